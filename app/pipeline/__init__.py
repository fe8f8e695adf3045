"""One typed function per job, under the CLI and the live system (docs/CONVENTIONS.md).

Each takes settings objects, a ``TimeSeriesStore`` and frames or domain types and returns a
frozen result whose ``to_dict()`` is the command's JSON summary:

- ``ingest.ingest_bars`` (inputs from ``bar_sources``), ``side.ingest_side`` (inputs from
  ``side_sources.collect``), ``features.build_feature_table``, ``walkforward.walk_forward``,
  ``backtest.run_backtest_job``, ``sentiment.train_sentiment``, ``promote.promote_model``;
- ``research.research_run`` composes them: the main job (``make run``).

``assets`` decides each symbol's asset class (the store's record first); ``news`` rebuilds
the scored-news frame from the store. Modules are imported one by one (no re-exports), so
ingesting does not load torch.
"""
