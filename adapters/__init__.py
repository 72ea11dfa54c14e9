"""Protocol edges (NTCIP/SNMP, LoRaWAN/MQTT, SensorThings, NGSI-LD); they import only sim's messages."""
