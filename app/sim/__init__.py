"""The seeded market simulator, its oracle and its typed manifest (docs/SIMULATOR.md).

Modules: ``catalog`` (symbols and their scale), ``config`` (``SimConfig``, planted effect
sizes, seeded streams), ``drift`` (the planted drift from observable inputs), ``side``
(headlines and flow), ``market`` (price paths and the day loop), ``oracle`` (the best
possible forecast), ``calendar`` (trading hours), ``templates``/``headlines`` (news text),
``result`` (``SimulationResult``), ``manifest`` (``SimManifest``) and ``files`` (the folder
format). Layer rule: imports only app.types, app.config, app.labels and app.errors.
"""
