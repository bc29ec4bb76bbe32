"""Outcomes of served predictions and realised performance: the store, metrics and endpoints.

- store.py:       OutcomeStore, SQLAlchemy Core over SQLite (WAL) or PostgreSQL, with migrations;
- performance.py: AUC, Gini, KS, Brier, ECE, observed default rate and mean PD;
- recorder.py:    OutcomeRecorder, the service's side (recording, degraded mode, retention, gauges);
- api.py:         POST /v1/outcomes and GET /v1/models/{name}[/versions/{v}]/performance.
"""

from maasfin.serving.outcomes.performance import performance
from maasfin.serving.outcomes.recorder import OutcomeRecorder

__all__ = ["OutcomeRecorder", "performance"]
