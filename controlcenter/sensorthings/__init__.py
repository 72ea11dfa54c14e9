"""OGC SensorThings API 1.1 under ``/v1.1``: the district's intersections, parking zones and
air-quality stations as Things, the run's messages as Observations (Sensing Core, read-only;
Filtering: ``$filter $select $expand $orderby $top $skip $count``; new Observations over MQTT).

Modules: :mod:`model` (the entity types), :mod:`store` (entities and their indexes),
:mod:`district` (the district's entities, messages -> Observations), :mod:`geo` (net -> WGS 84),
:mod:`expr` and :mod:`options` (the query language), :mod:`service` (answering a request),
:mod:`router` (HTTP), :mod:`mqtt` (publishing), :mod:`live` (wired into ``ccsim serve``).
"""
