-- What keeps the audit trail trustworthy below the database superuser (see "Trust model"
-- in the README): the capture functions' caller check, the hash chain, retention and
-- the guards on every kit table.
--
-- {{audit_schema}} is replaced by the quoted audit schema, {{audit_schema_literal}} by
-- that quoted name as a string literal, {{header_columns}} by the DMS
-- header column names as a text[] literal, {{canonical_row}} by the canonical text of
-- audit row `a` and {{canonical_block_header}} by that of chain block `b`
-- (src/trust/canonical.ts: verify hashes the same text).
-- PL/pgSQL throughout (the bodies refer to tables a later migration may create), but for
-- foreign_audit_trigger, which reads only the catalogs and must be inlined.

-- The triggers on the audit log and the chain whose function lives outside the audit
-- schema, as 'name on table': code that would run inside the capture path (only the
-- owner creates functions in the audit schema, and EXECUTE on them is not granted, so
-- the TRIGGER privilege alone can attach nothing else). Read by the caller check on
-- every one-row staging statement and by seal_at_commit, so it must cost one index
-- lookup per catalog row inside their cached plans: a plain SQL function, STABLE, with
-- no SET clause and not SECURITY DEFINER, returning a set, so the planner inlines it
-- into the calling query (a function that is not inlined is planned again on each call,
-- under the caller's settings: capture_update's enable_nestloop off made that a hash
-- join over all of pg_type and pg_proc). Every name is schema-qualified because an
-- inlined body is parsed under the caller's search_path (both callers pin it).
-- The audit tables are found through the relation cache (a qualified name cast to
-- regclass), not by a pg_class scan. The kit's own trigger functions, resolved once per
-- call (an InitPlan), are known to live in the audit schema: only a trigger on another
-- function costs a pg_proc lookup. That list is a shortcut, not the rule: a function
-- missing from it (or renamed, to_regprocedure gives NULL) is looked up and judged by
-- its schema, as every function was before.
CREATE OR REPLACE FUNCTION {{audit_schema}}.foreign_audit_trigger()
RETURNS TABLE (description text)
LANGUAGE sql
STABLE
AS $function$
  SELECT pg_catalog.format('%I on %s', tg.tgname, tg.tgrelid::pg_catalog.regclass)
    FROM pg_catalog.pg_trigger AS tg
   WHERE tg.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY[
           ({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.audit_log')::pg_catalog.regclass,
           ({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.audit_chain')::pg_catalog.regclass]::pg_catalog.oid[])
     AND NOT tg.tgisinternal
     AND (tg.tgfoid OPERATOR(pg_catalog.=) ANY ((SELECT ARRAY[
           pg_catalog.to_regprocedure({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.seal_at_commit()'),
           pg_catalog.to_regprocedure({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.guard_kit_table()'),
           pg_catalog.to_regprocedure({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.guard_retention()'),
           pg_catalog.to_regprocedure({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.forbid_audit_log_change()')
         ])::pg_catalog.oid[])) IS NOT TRUE
     AND (SELECT p.pronamespace FROM pg_catalog.pg_proc AS p WHERE p.oid OPERATOR(pg_catalog.=) tg.tgfoid)
         IS DISTINCT FROM {{audit_schema_literal}}::pg_catalog.regnamespace
$function$;

-- Called first by every SECURITY DEFINER capture function. A trigger function can be
-- attached to any table its caller owns (a TEMP table will do) with any arguments, so
-- the function refuses to run for anything but a staging table the kit registered,
-- with the registered table, key and excluded columns as its first four arguments (the
-- rest only say how values are rendered), whose columns all have pg_catalog types (a
-- user-defined type could bring an assignment cast or operator that would run the
-- caller's code with the definer's rights). It also refuses while a foreign trigger
-- sits on the audit log or the chain (foreign_audit_trigger): that code would run inside
-- the capture path.
--
-- It runs for every staging statement, and DMS applies one row per statement, so it is
-- one query of index lookups with one cached plan: every catalog row is reached through
-- a correlated scalar subquery (an index scan on the catalog's key whatever the planner
-- settings: capture_update runs with enable_nestloop off, under which joins became hash
-- joins over all of pg_type and pg_proc), the plan is generic (a custom plan was made
-- again on every call), and the audit tables and the kit's trigger functions are
-- found through the caches (foreign_audit_trigger). The check is made
-- in full on every call: nothing is cached between statements, so no state a caller
-- could forge or outlive (a trigger or column type changed later in the same
-- transaction) decides it.
CREATE OR REPLACE FUNCTION {{audit_schema}}.assert_capture_call(relid oid, argv text[])
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
  -- TG_ARGV counts from 0: re-base to 1.
  args constant text[] := argv[array_lower(argv, 1):array_upper(argv, 1)];
  registered boolean;
  foreign_type boolean;
  foreign_trigger text;
BEGIN
  SELECT
    EXISTS (
      SELECT FROM {{audit_schema}}.audited_table AS r
      WHERE r.source_schema = args[1] AND r.source_table = args[2]
        AND r.staging_table = relid
        AND r.key_columns = args[3]::text[]
        -- Kept out of row JSON: header, ignored and generated-placeholder columns.
        AND {{header_columns}}::text[] || r.ignore_columns || r.generated_columns = args[4]::text[]),
    EXISTS (
      SELECT FROM pg_catalog.pg_attribute AS a
      WHERE a.attrelid = relid AND a.attnum > 0 AND NOT a.attisdropped
        -- Types below FirstUnpinnedObjectId (12000; FirstBootstrapObjectId before
        -- PostgreSQL 15) come from the bootstrap catalog data, all in pg_catalog and
        -- pinned (test/trust/capture-check-plans checks it on the server): only other
        -- columns cost a pg_type lookup.
        AND a.atttypid >= 12000
        AND (SELECT t.typnamespace FROM pg_catalog.pg_type AS t WHERE t.oid = a.atttypid)
            IS DISTINCT FROM 'pg_catalog'::regnamespace),
    (SELECT f.description FROM {{audit_schema}}.foreign_audit_trigger() AS f LIMIT 1)
  INTO registered, foreign_type, foreign_trigger;
  IF coalesce(cardinality(args), 0) < 4 OR NOT registered THEN
    RAISE EXCEPTION 'audit capture refused: % is not a staging table registered in %.audited_table with these trigger arguments',
      relid::regclass, {{audit_schema_literal}}
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF foreign_type THEN
    RAISE EXCEPTION 'audit capture refused: % has a column of a type outside pg_catalog', relid::regclass
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF foreign_trigger IS NOT NULL THEN
    RAISE EXCEPTION 'audit capture refused: foreign trigger % would run inside the capture path', foreign_trigger
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Only the kit''s own triggers may sit on the audit tables; drop it (audit-trail verify --integrity lists them).';
  END IF;
END
$function$;

-- Under REPEATABLE READ or SERIALIZABLE an applier's snapshot is taken before it waits
-- for the chain lock, so it may not see a block that the previous holder committed
-- meanwhile: sealing on that stale head would collide with that block (a bare 23505, or a
-- generic 40001 somewhere in the capture path). Right after each taking of the lock,
-- this probes the next block number: ON CONFLICT under a transaction snapshot raises a
-- serialization failure exactly when a committed block is invisible to it; otherwise the
-- probe row is rolled back with its subtransaction. Either way nothing is written. A
-- stale applier gets one clear, retryable 40001 that names the chain. Every time, not
-- once per transaction: a mark that the check was done (a transaction-local setting, as
-- once) is one the applier could set itself.
-- READ COMMITTED (what DMS and the engine use) never gets here: each statement after the
-- lock sees the current head.
CREATE OR REPLACE FUNCTION {{audit_schema}}.assert_chain_head_visible()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  visible_head bigint;
  stale boolean := false;
BEGIN
  SELECT max(c.block_no) INTO visible_head FROM {{audit_schema}}.audit_chain AS c;
  BEGIN
    INSERT INTO {{audit_schema}}.audit_chain
      (block_no, kind, row_ids, row_hashes, last_row_id, recorded_at, prev_hash, block_hash)
    VALUES (coalesce(visible_head + 1, 0), 'capture', '{}', '{}', 0, clock_timestamp(), '\x', '\x')
    ON CONFLICT (block_no) DO NOTHING;
    RAISE EXCEPTION USING ERRCODE = 'AT001'; -- undo the probe row
  EXCEPTION
    WHEN serialization_failure OR unique_violation THEN stale := true;
    WHEN SQLSTATE 'AT001' THEN NULL;
  END;
  IF stale THEN
    RAISE EXCEPTION 'audit chain head moved: % has a block (after block %) committed after this transaction''s snapshot was taken',
      ({{audit_schema_literal}} || '.audit_chain')::regclass, coalesce(visible_head::text, 'none')
      USING ERRCODE = 'serialization_failure',
            DETAIL = 'Capture appends to the hash chain under a lock; a ' || current_setting('transaction_isolation')
                     || ' transaction cannot see the head the previous lock holder wrote.',
            HINT = 'Retry the transaction. Apply changes at READ COMMITTED (the default) to avoid these retries.';
  END IF;
END
$function$;

-- Serialises the chain: taken by the capture functions before they insert, so audit
-- row ids are allocated in chain order, and held until the applying transaction ends.
CREATE OR REPLACE FUNCTION {{audit_schema}}.lock_chain()
RETURNS void
LANGUAGE plpgsql
-- No SET clause (it runs for every staging statement, and a SET clause saves and restores
-- the setting on each call): every name in it is schema-qualified instead.
AS $function$
DECLARE
  done pg_catalog.text;
BEGIN
  -- An assignment, not PERFORM: evaluated as an expression, with no executor start-up.
  done := pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('audit-trail:chain:'
            OPERATOR(pg_catalog.||) ({{audit_schema_literal}} OPERATOR(pg_catalog.||) '.audit_chain')
              ::pg_catalog.regclass::pg_catalog.oid::pg_catalog.text, 0));
  -- A snapshot older than the lock may miss the head (assert_chain_head_visible).
  IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
    PERFORM {{audit_schema}}.assert_chain_head_visible();
  END IF;
  -- A foreign trigger created between the caller check and the insert would still fire:
  -- hold the lock CREATE TRIGGER needs until this transaction ends.
  LOCK TABLE {{audit_schema}}.audit_log, {{audit_schema}}.audit_chain IN ROW EXCLUSIVE MODE;
END
$function$;

-- Appends one block covering the audit rows inserted since the chain head (at most
-- max_rows of them; NULL for all). Returns how many rows it covered (0: no block).
-- block_hash = sha256(prev_hash || sha256(header text) || row hashes), where a row
-- hash is sha256 of the row's canonical text and the header names the block, its kind,
-- its row ids and the chain position; verify recomputes all of it outside the database.
CREATE OR REPLACE FUNCTION {{audit_schema}}.seal_block(block_kind text, max_rows integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  head record;
  ids bigint[];
  hashes bytea[];
  next_no bigint;
  header text;
  at timestamptz := clock_timestamp();
BEGIN
  SELECT c.block_no, c.block_hash, c.last_row_id INTO head
  FROM {{audit_schema}}.audit_chain AS c ORDER BY c.block_no DESC LIMIT 1;
  SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}'), coalesce(array_agg(x.row_hash ORDER BY x.id), '{}')
    INTO ids, hashes
  FROM (
    SELECT a.id, sha256(convert_to({{canonical_row}}, 'UTF8')) AS row_hash
    FROM {{audit_schema}}.audit_log AS a
    WHERE a.id > coalesce(head.last_row_id, 0)
    ORDER BY a.id
    LIMIT max_rows
  ) AS x;
  -- Replays (DMS re-applies after a restart) insert nothing: no block. Only an empty
  -- chain gets an empty (genesis) block.
  IF cardinality(ids) = 0 AND head.block_no IS NOT NULL THEN
    RETURN 0;
  END IF;
  next_no := coalesce(head.block_no + 1, 0);
  SELECT {{canonical_block_header}} INTO header
  FROM (SELECT next_no AS block_no, block_kind AS kind, ids AS row_ids,
               coalesce(ids[cardinality(ids)], head.last_row_id, 0) AS last_row_id,
               NULL::bigint AS pruned_through, NULL::name AS actor, at AS recorded_at) AS b;
  INSERT INTO {{audit_schema}}.audit_chain
    (block_no, kind, row_ids, row_hashes, last_row_id, pruned_through, actor, recorded_at, prev_hash, block_hash)
  VALUES (next_no, block_kind, ids, hashes, coalesce(ids[cardinality(ids)], head.last_row_id, 0), NULL, NULL, at,
          coalesce(head.block_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea),
          sha256(coalesce(head.block_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
                 || sha256(convert_to(header, 'UTF8'))
                 || coalesce((SELECT string_agg(h, ''::bytea ORDER BY n) FROM unnest(hashes) WITH ORDINALITY AS u(h, n)), ''::bytea)));
  RETURN cardinality(ids);
END
$function$;

-- Seals every audit row not yet in the chain, in blocks of at most 10,000 rows: a
-- statement or transaction of a million rows gets a hundred blocks, not one block whose
-- id and hash arrays (and canonical texts, hashed in one query) grow with it. Returns the
-- number of blocks written: 0 for a replay, which inserted nothing; the first call on an
-- empty chain writes the (possibly empty) genesis block. Called under the chain lock.
CREATE OR REPLACE FUNCTION {{audit_schema}}.seal_blocks(block_kind text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- The capture functions, which call this, run with generic plans; seal_block's read of
-- the rows past the chain head keeps a plan made for its values (a generic one was
-- measured slower, and is not known to stay an index scan on a log of millions of rows).
SET plan_cache_mode = auto
AS $function$
DECLARE
  block_rows constant integer := 10000;
  first_block boolean := NOT EXISTS (SELECT FROM {{audit_schema}}.audit_chain);
  sealed integer;
  blocks integer := 0;
BEGIN
  LOOP
    sealed := {{audit_schema}}.seal_block(block_kind, block_rows);
    IF sealed > 0 OR first_block THEN
      blocks := blocks + 1;
    END IF;
    first_block := false;
    EXIT WHEN sealed < block_rows;
  END LOOP;
  RETURN blocks;
END
$function$;

-- Whether the seal at commit is already queued for this transaction's unsealed audit
-- rows: the first audit row the chain does not cover yet (one index probe past the chain
-- head) was inserted at this transaction's top level (its xmin is the transaction's xid).
-- Every seal covers every unsealed row, so when that row was inserted no earlier row was
-- waiting, and its insert queued seal_at_commit (below): later one-row statements queue
-- none, and a transaction is sealed by one event, not one per row. Read by the capture
-- functions under the chain lock, from the audit log and the chain, which only the capture
-- role writes: a caller cannot make it say true for rows that wait for no event. A row a
-- subtransaction inserted carries the subtransaction's xid (rolling it back discards its
-- event with it): it answers false, and the next row queues its own event (a second event
-- finds its row sealed and returns). ORDER BY ... LIMIT 1 keeps the plan an index scan
-- however small the log was when the plan was cached.
-- A set-returning SQL function (one row) with no SET clause, so the planner inlines it
-- into the capture functions' query (a scalar SQL function holding a subquery is never
-- inlined, and is planned again on every call); every name is schema-qualified (an
-- inlined body is parsed under the caller's search_path; both callers pin it).
CREATE OR REPLACE FUNCTION {{audit_schema}}.seal_queued()
RETURNS SETOF boolean
LANGUAGE sql
STABLE
AS $function$
  SELECT coalesce((
    SELECT a.xmin FROM {{audit_schema}}.audit_log AS a
     WHERE a.id OPERATOR(pg_catalog.>) coalesce((SELECT c.last_row_id FROM {{audit_schema}}.audit_chain AS c
                                                  ORDER BY c.block_no DESC LIMIT 1), 0)
     ORDER BY a.id LIMIT 1) OPERATOR(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id()), false)
$function$;

-- Seals the chain once per applying transaction, at its commit, for the rows of one-row
-- staging statements (DMS applies one row per statement, and a block per statement cost
-- more than the change itself; larger statements seal their own rows at once). The
-- capture functions insert such rows with audit_trail.seal_at_commit on while no row of
-- the transaction waits for a seal already queued (seal_queued), and only then does the
-- deferred constraint trigger below queue an event for the row: the first event to fire
-- seals every unsealed row into blocks, any other finds its row sealed and returns. The
-- setting decides only whether a row queues the seal;
-- only the capture functions insert audit rows, and they set it themselves before each
-- insert, so a value a caller sets changes nothing. The capture functions took the chain
-- lock before inserting and hold it until the transaction ends, so the rows are the
-- chain's next rows and nobody else seals in between. SET CONSTRAINTS ALL IMMEDIATE
-- seals early; the rest is sealed at commit. Runs as the capture role (it owns this).
-- A foreign trigger planted on the audit tables after the capture, in the same
-- transaction (the lock keeps other sessions' DDL out, not its own), would run inside
-- the block insert: it is refused here as in the caller check, and the whole
-- transaction rolls back. A huge transaction gets several blocks (seal_blocks).
CREATE OR REPLACE FUNCTION {{audit_schema}}.seal_at_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $function$
DECLARE
  foreign_trigger text;
BEGIN
  -- Attached anywhere else (EXECUTE is not granted, but even so), NEW is not an audit row.
  -- This may fire for several audit rows of a transaction: the name is resolved through
  -- the relation cache (regclass input), not by a query that would scan pg_class per row.
  IF TG_RELID IS DISTINCT FROM ({{audit_schema_literal}} || '.audit_log')::regclass
     OR TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' THEN
    RAISE EXCEPTION 'audit chain: seal_at_commit runs only as the audit log''s deferred insert trigger'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.id <= coalesce((SELECT c.last_row_id FROM {{audit_schema}}.audit_chain AS c
                          ORDER BY c.block_no DESC LIMIT 1), 0) THEN
    RETURN NULL; -- sealed by an earlier firing
  END IF;
  SELECT f.description INTO foreign_trigger FROM {{audit_schema}}.foreign_audit_trigger() AS f LIMIT 1;
  IF foreign_trigger IS NOT NULL THEN
    RAISE EXCEPTION 'audit capture refused: foreign trigger % would run inside the capture path', foreign_trigger
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Only the kit''s own triggers may sit on the audit tables; drop it (audit-trail verify --integrity lists them).';
  END IF;
  PERFORM {{audit_schema}}.lock_chain();
  PERFORM {{audit_schema}}.seal_blocks('capture');
  RETURN NULL;
END
$function$;

-- The trigger that runs seal_at_commit: queued only for rows of one-row statements,
-- deferred to commit, and ENABLE ALWAYS so that session_replication_role = replica (DMS
-- may apply with it) does not switch it off. CREATE OR REPLACE does not take constraint
-- triggers: created once.
DO $do$
BEGIN
  IF NOT EXISTS (
    SELECT FROM pg_catalog.pg_trigger
    WHERE tgrelid = ({{audit_schema_literal}} || '.audit_log')::regclass AND tgname = 'seal_at_commit'
  ) THEN
    CREATE CONSTRAINT TRIGGER seal_at_commit AFTER INSERT ON {{audit_schema}}.audit_log
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
      WHEN (pg_catalog.current_setting('audit_trail.seal_at_commit', true) OPERATOR(pg_catalog.=) 'on')
      EXECUTE FUNCTION {{audit_schema}}.seal_at_commit();
  END IF;
  ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER seal_at_commit;
END
$do$;

-- Retention, the only way audit rows leave the log: deletes every row of the chain's
-- blocks up to and including `through_block` and appends a "prune" block to the chain
-- saying through which block, by whom and when. The chain itself is kept, so verify still
-- checks every link and tells retention (rows covered by a prune block) from tampering.
-- Called with the chain lock held by the two public functions below, which choose the
-- block. Owner only: EXECUTE is granted to no one, and the delete guard checks the owner.
CREATE OR REPLACE FUNCTION {{audit_schema}}.prune_audit_log_through(through_block bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  through record;
  head record;
  header text;
  deleted bigint;
  at timestamptz := clock_timestamp();
BEGIN
  SELECT c.block_no, c.last_row_id INTO through
  FROM {{audit_schema}}.audit_chain AS c WHERE c.block_no = through_block AND c.kind <> 'prune';
  -- Nothing to do, or already pruned that far: no second checkpoint.
  IF through IS NULL OR through.block_no <= coalesce((
       SELECT max(p.pruned_through) FROM {{audit_schema}}.audit_chain AS p WHERE p.kind = 'prune'), -1) THEN
    RETURN 0;
  END IF;
  SELECT c.block_no, c.block_hash, c.last_row_id INTO head
  FROM {{audit_schema}}.audit_chain AS c ORDER BY c.block_no DESC LIMIT 1;
  SELECT {{canonical_block_header}} INTO header
  FROM (SELECT head.block_no + 1 AS block_no, 'prune'::text AS kind, '{}'::bigint[] AS row_ids,
               head.last_row_id AS last_row_id, through.block_no AS pruned_through,
               session_user AS actor, at AS recorded_at) AS b;
  INSERT INTO {{audit_schema}}.audit_chain
    (block_no, kind, row_ids, row_hashes, last_row_id, pruned_through, actor, recorded_at, prev_hash, block_hash)
  VALUES (head.block_no + 1, 'prune', '{}', '{}', head.last_row_id, through.block_no, session_user, at,
          head.block_hash, sha256(head.block_hash || sha256(convert_to(header, 'UTF8'))));
  DELETE FROM {{audit_schema}}.audit_log WHERE id <= through.last_row_id;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$function$;

-- Retention by apply time: prunes the blocks recorded (sealed on the target) before
-- `recorded_before`.
CREATE OR REPLACE FUNCTION {{audit_schema}}.prune_audit_log(recorded_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  through_block bigint;
BEGIN
  PERFORM {{audit_schema}}.lock_chain();
  SELECT c.block_no INTO through_block
  FROM {{audit_schema}}.audit_chain AS c
  WHERE c.recorded_at < recorded_before AND c.kind <> 'prune'
  ORDER BY c.block_no DESC LIMIT 1;
  RETURN {{audit_schema}}.prune_audit_log_through(through_block);
END
$function$;

-- Retention by source commit time, the way retention periods are stated: prunes the
-- longest run of blocks from the start of the chain whose rows were all committed before
-- `committed_before`. A block holding any row committed at or after it is kept whole, and
-- so is everything after it: no row committed at or after the cutoff is ever removed.
CREATE OR REPLACE FUNCTION {{audit_schema}}.prune_audit_log_committed_before(committed_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  first_kept bigint;
  through_block bigint;
BEGIN
  PERFORM {{audit_schema}}.lock_chain();
  SELECT min(a.id) INTO first_kept
  FROM {{audit_schema}}.audit_log AS a WHERE a.commit_timestamp >= committed_before;
  SELECT c.block_no INTO through_block
  FROM {{audit_schema}}.audit_chain AS c
  WHERE c.kind <> 'prune' AND (first_kept IS NULL OR c.last_row_id < first_kept)
  ORDER BY c.block_no DESC LIMIT 1;
  RETURN {{audit_schema}}.prune_audit_log_through(through_block);
END
$function$;

-- Statement-level guard on every kit table: the statement's operation is allowed only
-- to the roles named in the trigger arguments (members included: membership in the
-- owner role is ownership). Whatever a DBA grants by mistake, nobody else writes.
-- With no arguments the operation is refused to everyone (UPDATE of the audit log).
-- No SET clause (it fires for every audit insert statement, one per captured change, and
-- a SET clause saves and restores the setting on each call): every function, operator
-- and type is schema-qualified instead, so a caller's search_path (the owner's during a
-- migration, too) changes nothing it runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.guard_kit_table()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
DECLARE
  allowed pg_catalog.name;
BEGIN
  FOREACH allowed IN ARRAY coalesce(TG_ARGV, '{}'::pg_catalog.text[]) LOOP
    IF pg_catalog.pg_has_role(CURRENT_USER, allowed, 'USAGE') THEN
      RETURN NULL;
    END IF;
  END LOOP;
  IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'audit_log'::pg_catalog.name
     OR TG_TABLE_NAME OPERATOR(pg_catalog.=) 'audit_chain'::pg_catalog.name THEN
    RAISE EXCEPTION 'the audit log is append-only: % on %.% is not allowed for role %', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, CURRENT_USER
      USING ERRCODE = 'insufficient_privilege',
            HINT = pg_catalog.concat('Rows leave the audit log only through ', pg_catalog.quote_ident(TG_TABLE_SCHEMA),
                                     '.prune_audit_log(), run by the owner role.');
  END IF;
  RAISE EXCEPTION '%.% belongs to the audit-trail kit: % is not allowed for role %', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, CURRENT_USER
    USING ERRCODE = 'insufficient_privilege',
          HINT = pg_catalog.concat('Only the kit''s roles (', pg_catalog.array_to_string(TG_ARGV, ', '), ') may write it.');
END
$function$;

-- After a DELETE on the audit log: every deleted row must be covered by a prune block
-- already in the chain (prune_audit_log appends it before deleting). Anything else is
-- an attempt to remove history, whoever runs it.
CREATE OR REPLACE FUNCTION {{audit_schema}}.guard_retention()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  pruned_through_id bigint;
  highest_deleted bigint;
BEGIN
  SELECT max(b.last_row_id) INTO pruned_through_id
  FROM {{audit_schema}}.audit_chain AS p
  JOIN {{audit_schema}}.audit_chain AS b ON b.block_no = p.pruned_through
  WHERE p.kind = 'prune';
  SELECT max(o.id) INTO highest_deleted FROM old_rows AS o;
  IF highest_deleted > coalesce(pruned_through_id, 0) THEN
    RAISE EXCEPTION 'the audit log is append-only: row % is not covered by a retention checkpoint', highest_deleted
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Rows leave the audit log only through ' || quote_ident(TG_TABLE_SCHEMA) || '.prune_audit_log(), run by the owner role.';
  END IF;
  RETURN NULL;
END
$function$;
