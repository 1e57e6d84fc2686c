"""Streaming DSP that never touches a device: the log-mel front end and the onset gate."""
