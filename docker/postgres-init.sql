-- Runs once, on the first start of an empty pgdata volume (docker-entrypoint-initdb.d), as the
-- POSTGRES_USER superuser, which no service uses afterwards. Each service gets a login role of
-- its own that owns its own database and nothing else: no superuser, no CREATEDB/CREATEROLE, no
-- access to the other services' databases.
--   mlflow   MLflow tracking + model registry backend store (the mlflow service)
--   feast    Feast SQL registry, read and written by prefect-worker (SMP_COMPOSE__POSTGRES_DSN)
--   feast_reader  the same database read-only, for the api (it only reads the registry)
--   prefect  Prefect server state (prefect-server)
-- The passwords come from the postgres container's environment (set in .env), read with psql's
-- \getenv so that none is written in this file.
\set ON_ERROR_STOP on
\getenv mlflow_password MLFLOW_DB_PASSWORD
\getenv feast_password FEAST_DB_PASSWORD
\getenv prefect_password PREFECT_DB_PASSWORD
\getenv feast_reader_password FEAST_READER_DB_PASSWORD

CREATE ROLE mlflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'mlflow_password';
CREATE ROLE feast LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'feast_password';
CREATE ROLE prefect LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'prefect_password';
CREATE ROLE feast_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'feast_reader_password';

CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE feast OWNER feast;
CREATE DATABASE prefect OWNER prefect;

-- Only the owner connects (the default lets every role connect to every database).
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE feast FROM PUBLIC;
REVOKE ALL ON DATABASE prefect FROM PUBLIC;
GRANT CONNECT ON DATABASE feast TO feast_reader;

-- Extensions Prefect's migrations ask for, created here by the superuser so that its role
-- needs no extra rights (CREATE EXTENSION IF NOT EXISTS then finds them).
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- feast_reader may read every table the feast role creates (Feast creates its registry tables on
-- the worker's first use, after this script), and write none.
\connect feast
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO feast_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE feast IN SCHEMA public GRANT SELECT ON TABLES TO feast_reader;
