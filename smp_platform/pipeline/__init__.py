"""The batch verbs the flows and the CLI call, one module each: ingest, refresh, train, tune,
promote, predict, evaluate, report and monitor (drift). Never imported by the request path."""
