"""Error tree: one root, narrow subclasses that also inherit the matching builtin.

Every message is written for a technician: it names the thing (file, key, device) and what to do.
"""


class PolewatchError(Exception):
    """Root of every error polewatch raises on purpose."""


class ConfigError(PolewatchError, ValueError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(self.problems))


class AudioError(PolewatchError, OSError):
    """An audio file or device cannot be read."""


class AudioDeviceError(AudioError):
    """The microphone is missing, busy or disappeared."""


class ModelError(PolewatchError, ValueError):
    """The model file or its metadata is missing, corrupt or does not match the front end."""


class RuntimeMissingError(PolewatchError, ImportError):
    """No TFLite runtime package is installed."""


class OutboxFullError(PolewatchError, OSError):
    """The outbox cannot store another message: the data partition (or the outbox's own ceiling) is full."""


class MessageError(PolewatchError, ValueError):
    """An MQTT message does not follow its contract (``edge/transport/schemas``)."""

    def __init__(self, kind: str, path: str, problem: str) -> None:
        self.kind = kind
        self.path = path
        self.problem = problem
        super().__init__(f"{kind} message, at {path}: {problem}")


class SignatureError(PolewatchError, ValueError):
    """A message signature, signing key or certificate does not check out.

    ``reason`` is a short code for scripts: ``missing``, ``alg``, ``key_id``, ``bad`` (tampered or wrong key),
    ``malformed``, ``key`` (unusable key file) or ``cert`` (certificate chain, validity or name).
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)
