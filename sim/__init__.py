"""The simulation: scenarios, the simpy engine around SUMO, controllers, measurement and KPIs.

Pure: no web and no protocol code. Only :mod:`sim.sumo` talks to SUMO.
"""
