-- Runs once, on the first start of an empty pgdata volume (docker-entrypoint-initdb.d), as the
-- POSTGRES_USER superuser, who therefore owns all three databases.
-- mlflow:  MLflow tracking + model registry backend store
-- feast:   Feast SQL registry (SMP_COMPOSE__POSTGRES_DSN)
-- prefect: Prefect server state (PREFECT_API_DATABASE_CONNECTION_URL)
CREATE DATABASE mlflow;
CREATE DATABASE feast;
CREATE DATABASE prefect;
