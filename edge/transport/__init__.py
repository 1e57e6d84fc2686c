"""Everything that leaves the unit: MQTT topics, message schemas, the on-disk outbox and the publisher."""
