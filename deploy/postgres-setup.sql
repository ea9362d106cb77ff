-- Run once as the PostgreSQL superuser: psql -v gw_password="'…'" -v rasa_password="'…'" -f deploy/postgres-setup.sql
-- Two roles and two databases: the gateway's (conversations, console, content, registry) and
-- Rasa's tracker store. Neither role can read the other's database.
CREATE ROLE hotline LOGIN PASSWORD :gw_password;
CREATE ROLE hotline_rasa LOGIN PASSWORD :rasa_password;
CREATE DATABASE hotline OWNER hotline ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE hotline_rasa OWNER hotline_rasa ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE hotline FROM PUBLIC;
REVOKE ALL ON DATABASE hotline_rasa FROM PUBLIC;
