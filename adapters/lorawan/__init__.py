"""LoRaWAN parking sensors: vendor payload codecs, network-server uplink JSON (The Things Stack
v3, ChirpStack v4), the simulated end devices and the ingest state machine. Pure: no sockets."""
