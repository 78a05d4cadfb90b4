/**
 * FerretDB 1.24 filters on PostgreSQL with `_jsonb->'field' @> value`, which the btree indexes it
 * creates for MongoDB indexes (`(_jsonb->'field')`) cannot serve: every query would read the whole
 * table (a lookup by `_id`: 1 ms at 10 documents, 9.5 ms at 10,000). An event trigger gives each
 * of those btree indexes GIN twins on the same expressions, which `@>` uses, so the indexes the
 * service asks for through plain MongoDB serve its queries here too. Custom plans are forced, as
 * the field name reaches PostgreSQL as a statement parameter and a generic plan cannot match an
 * expression index. Nothing of this is seen by the service; on MongoDB its indexes simply work.
 */
export const INDEX_TWINS_SQL = String.raw`
CREATE OR REPLACE FUNCTION ferretdb_gin_twins(index_oid oid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  idx record;
  expr text;
BEGIN
  SELECT i.indexrelid, i.indrelid, i.indnkeyatts, c.relname, am.amname INTO idx
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
    WHERE i.indexrelid = index_oid;
  IF idx.amname IS DISTINCT FROM 'btree' THEN RETURN; END IF;
  FOR k IN 1..idx.indnkeyatts LOOP
    expr := pg_get_indexdef(idx.indexrelid, k, true);
    CONTINUE WHEN expr !~ '^\(?_jsonb -> ''[^'']+''::text\)?$';
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops)',
      left(idx.relname, 56) || '_gin' || k, idx.indrelid::regclass, expr);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ferretdb_gin_twins_on_create() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  command record;
BEGIN
  FOR command IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    PERFORM ferretdb_gin_twins(command.objid);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS ferretdb_gin_twins;
CREATE EVENT TRIGGER ferretdb_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION ferretdb_gin_twins_on_create();

-- Indexes made before the trigger existed (a development cluster from an earlier version).
SELECT ferretdb_gin_twins(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
`

/** Settings the cluster runs with for the twins to be used. */
export const INDEX_TWINS_SETTINGS = ['plan_cache_mode=force_custom_plan']
