"""MQTT: the broker URL, a Mosquitto child broker, and a thin aiomqtt transport."""
