"""NGSI-LD: the district's live state as FIWARE Smart Data Models entities.

:mod:`~controlcenter.ngsild.entities` keeps them from the message stream and the alarms,
:mod:`~controlcenter.ngsild.formats` renders them (normalized or key-values),
:mod:`~controlcenter.ngsild.query` is the ``q`` language, :mod:`~controlcenter.ngsild.api` the
read-only API under ``/ngsi-ld/v1``, and :mod:`~controlcenter.ngsild.push` sends them to a
context broker (``ccsim serve --ngsi-ld URL``). The models' JSON Schemas are vendored in
``schemas/`` (CC-BY-4.0).
"""
