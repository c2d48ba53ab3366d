r"""Generates ``sample_patterns.json``: the sample pattern map shipped with synapse-mojo.

    uv run python -m synapse_mojo._dev.generate_sample_patterns \
        > python/synapse_mojo/data/sample_patterns.json

The output is a Synapse ``PATTERN_MAP.json`` document (``meta``, ``patterns`` keyed by id,
``emergence_log``) of a few hundred software patterns: caching, resilience, concurrency, data
access, API design, messaging, observability, security, testing, refactoring, performance and
agent-system patterns. Each family below is written by hand (description, signature, a
before/after example); the generator applies every family to several subjects (the things
the pattern is used on: user profiles, invoices, embeddings, ...), so the map holds related
but distinct patterns, as a real mined map does. It is deterministic (fixed seed); a test
checks that the committed file is exactly this script's output.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta

SEED = 20260115

# Subjects: (snake_case name, human phrase, CamelCase type).
SUBJECTS = [
    ("user_profile", "user profiles", "UserProfile"),
    ("order", "orders", "Order"),
    ("invoice", "invoices", "Invoice"),
    ("product", "product listings", "Product"),
    ("session", "login sessions", "Session"),
    ("feature_flag", "feature flags", "FeatureFlag"),
    ("embedding", "text embeddings", "Embedding"),
    ("pattern", "pattern map entries", "Pattern"),
    ("message", "agent messages", "Message"),
    ("audit_event", "audit events", "AuditEvent"),
    ("metric", "metric samples", "MetricSample"),
    ("config", "configuration documents", "ConfigDocument"),
    ("payment", "payments", "Payment"),
    ("shipment", "shipments", "Shipment"),
    ("notification", "notifications", "Notification"),
    ("tenant", "tenant settings", "TenantSettings"),
    ("search_result", "search results", "SearchResult"),
    ("document", "uploaded documents", "Document"),
]

DISCOVERERS = [
    "pattern_miner", "refactor_agent", "code_review_agent", "compression_tract",
    "external_tract", "internal_tract", "human:maria", "human:kenji", "human:amara",
]  # fmt: skip

# One family per pattern; {s} = snake subject, {p} = phrase, {T} = CamelCase type.
FAMILIES: list[dict] = [
    # ---------------------------------------------------------------- caching
    dict(
        key="cache_aside",
        category="caching",
        name="Cache-aside for {p}",
        description=(
            "Read {p} from the cache first; on a miss load them from the database and populate the "
            "cache with a TTL, so repeated reads skip the slow path."
        ),
        signature="get_{s}(id) -> {T}: cache.get(id) or cache.set(id, db.load(id), ttl)",
        before="def get_{s}(id):\n    return db.query({T}, id)",
        after=(
            'def get_{s}(id):\n    if (hit := cache.get(f"{s}:{{id}}")) is not None:\n        '
            'return hit\n    value = db.query({T}, id)\n    cache.set(f"{s}:{{id}}", value, '
            "ex=300)\n    return value"
        ),
        applicable_to=["python", "redis", "read-heavy services"],
        replaces="direct database reads on every request",
    ),
    dict(
        key="write_through",
        category="caching",
        name="Write-through cache for {p}",
        description=(
            "Write {p} to the database and the cache in the same code path so readers never see a "
            "stale cached copy after an update."
        ),
        signature="save_{s}({s}: {T}) -> None: db.save; cache.set",
        before="def save_{s}(x):\n    db.save(x)",
        after="def save_{s}(x):\n    db.save(x)\n    cache.set(key_for(x), x)",
        applicable_to=["python", "redis", "consistency-sensitive reads"],
        replaces="cache entries that expire long after the source changed",
    ),
    dict(
        key="invalidate_on_write",
        category="caching",
        name="Invalidate cached {p} on write",
        description=(
            "Delete the cache entry for {p} whenever the record changes instead of updating it in "
            "place; the next read repopulates it from the source of truth."
        ),
        signature="update_{s}(id, changes) -> {T}: db.update; cache.delete(id)",
        before="db.update({s}_id, changes)\ncache.set(key, merged_copy)",
        after="db.update({s}_id, changes)\ncache.delete(key)",
        applicable_to=["redis", "memcached", "multi-writer systems"],
        replaces="racy cache updates from several writers",
    ),
    dict(
        key="memoize",
        category="caching",
        name="Memoize pure computations over {p}",
        description=(
            "Wrap a pure, expensive function of {p} in an LRU cache keyed by its arguments; "
            "identical calls return the stored result."
        ),
        signature="@lru_cache(maxsize=N) def score_{s}(key) -> float",
        before="def score_{s}(key):\n    return expensive_model(load(key))",
        after=(
            "@functools.lru_cache(maxsize=4096)\ndef score_{s}(key):\n    return "
            "expensive_model(load(key))"
        ),
        applicable_to=["python", "pure functions"],
        replaces="recomputing identical results in a hot loop",
    ),
    dict(
        key="negative_cache",
        category="caching",
        name="Negative caching of missing {p}",
        description=(
            "Cache the fact that a {s} does not exist for a short time, so lookups of unknown ids "
            "stop hammering the database."
        ),
        signature="find_{s}(id) -> {T} | None: cache sentinel MISSING with short TTL",
        before="row = db.find({T}, id)  # called for the same unknown id thousands of times",
        after=(
            "hit = cache.get(k)\nif hit == MISSING:\n    return None\nrow = db.find({T}, "
            "id)\ncache.set(k, row or MISSING, ex=30 if row is None else 300)"
        ),
        applicable_to=["redis", "public APIs", "scrapers"],
        replaces="repeated misses reaching the database",
    ),
    dict(
        key="request_coalescing",
        category="caching",
        name="Coalesce concurrent loads of {p}",
        description=(
            "When many requests miss the cache for the same {s} at once, let one load it and have "
            "the others await that single result (single flight)."
        ),
        signature="async load_{s}(id) -> {T}: inflight.setdefault(id, task)",
        before="value = await db.fetch(id)  # 500 identical fetches on a cold key",
        after=(
            "task = inflight.get(id) or inflight.setdefault(id, "
            "asyncio.create_task(db.fetch(id)))\nvalue = await task"
        ),
        applicable_to=["asyncio", "go singleflight", "cache stampedes"],
        replaces="thundering herd on cache expiry",
    ),
    # ---------------------------------------------------------------- resilience
    dict(
        key="retry_backoff",
        category="resilience",
        name="Retry writes of {p} with exponential backoff",
        description=(
            "Retry transient failures when sending {p} with exponentially growing, jittered delays "
            "and a cap on attempts; permanent errors fail at once."
        ),
        signature=(
            "send_{s}(x) -> Response: retry(on=Transient, attempts=5, backoff=0.5*2**n, jitter)"
        ),
        before=(
            "for _ in range(5):\n    try:\n        return client.post(url, json=x)\n    except "
            "Exception:\n        time.sleep(1)"
        ),
        after=(
            "@retry(retry_on=(Timeout, HTTP429, HTTP503), attempts=5, backoff=expo(0.5, cap=20), "
            "jitter=full)\ndef send_{s}(x):\n    return client.post(url, json=x)"
        ),
        applicable_to=["http clients", "python", "flaky networks"],
        replaces="fixed-sleep retry loops that retry everything",
    ),
    dict(
        key="circuit_breaker",
        category="resilience",
        name="Circuit breaker around the {p} service",
        description=(
            "Stop calling the {p} dependency after a run of failures, fail fast for a cool-down "
            "period, then let a trial call decide whether to close the circuit again."
        ),
        signature="breaker.call(fetch_{s}, id) -> {T} | raises CircuitOpen",
        before="return remote.fetch_{s}(id)  # every caller waits for the 30 s timeout",
        after=(
            "breaker = CircuitBreaker(failures=5, reset_after=30)\nreturn "
            "breaker.call(remote.fetch_{s}, id)"
        ),
        applicable_to=["microservices", "remote dependencies"],
        replaces="cascading timeouts when a dependency is down",
    ),
    dict(
        key="timeout_budget",
        category="resilience",
        name="Deadline budget for {p} requests",
        description=(
            "Give each request touching {p} one overall deadline and pass the remaining budget to "
            "every downstream call instead of fixed per-call timeouts."
        ),
        signature="handle(req, deadline) -> Response: call(dep, timeout=deadline.remaining())",
        before="a = dep_a.get(id, timeout=10)\nb = dep_b.get(id, timeout=10)",
        after=(
            "deadline = Deadline(seconds=2)\na = dep_a.get(id, timeout=deadline.remaining())\nb = "
            "dep_b.get(id, timeout=deadline.remaining())"
        ),
        applicable_to=["grpc", "http services", "latency SLOs"],
        replaces="stacked timeouts exceeding the caller's own",
    ),
    dict(
        key="bulkhead",
        category="resilience",
        name="Bulkhead pool for {p} work",
        description=(
            "Give work on {p} its own bounded worker pool and queue so a slow dependency cannot "
            "exhaust the threads that other features need."
        ),
        signature="pools['{s}'].submit(fn) -> Future  # bounded, isolated",
        before="executor.submit(process_{s}, item)  # one shared pool for everything",
        after="{s}_pool = ThreadPoolExecutor(max_workers=8)\n{s}_pool.submit(process_{s}, item)",
        applicable_to=["thread pools", "connection pools"],
        replaces="one shared pool starved by a slow feature",
    ),
    dict(
        key="idempotency_key",
        category="resilience",
        name="Idempotency keys for {p} writes",
        description=(
            "Let clients send an idempotency key with each {s} write; store the first result under "
            "that key and return it for retries instead of writing twice."
        ),
        signature="create_{s}(body, idempotency_key) -> {T}: dedupe by key",
        before="POST /{s}s  -> creates a duplicate when the client retries after a timeout",
        after=(
            "if (done := store.get(key)) is not None:\n    return done\nresult = "
            "create(body)\nstore.set(key, result, ex=86400)"
        ),
        applicable_to=["payment APIs", "at-least-once delivery"],
        replaces="duplicate side effects on client retries",
    ),
    dict(
        key="graceful_degradation",
        category="resilience",
        name="Graceful degradation when {p} are unavailable",
        description=(
            "Serve a cached or simplified answer when the {p} backend fails, marking the response "
            "as degraded rather than returning an error page."
        ),
        signature="get_{s}s() -> Result: try live; except Unavailable: stale(cache)",
        before="return live_service.list_{s}s()",
        after=(
            "try:\n    return live_service.list_{s}s()\nexcept ServiceUnavailable:\n    return "
            "Degraded(cache.last_good('{s}s'))"
        ),
        applicable_to=["user-facing pages", "recommendations"],
        replaces="hard failures for non-critical data",
    ),
    # ---------------------------------------------------------------- concurrency
    dict(
        key="bounded_queue",
        category="concurrency",
        name="Bounded queue with backpressure for {p}",
        description=(
            "Put {p} on a bounded queue so producers block or shed load when consumers fall "
            "behind, instead of growing memory without limit."
        ),
        signature="queue = Queue(maxsize=N); put(item, timeout) -> raises Full",
        before="pending.append({s})  # list grows until the process is OOM-killed",
        after="pending = queue.Queue(maxsize=10_000)\npending.put({s}, timeout=1.0)",
        applicable_to=["producer/consumer", "python", "ingestion pipelines"],
        replaces="unbounded in-memory buffers",
    ),
    dict(
        key="worker_pool",
        category="concurrency",
        name="Worker pool for CPU-bound {p} processing",
        description=(
            "Process {p} on a pool of worker processes sized to the cores, handing work out in "
            "chunks so the GIL does not serialise CPU-bound code."
        ),
        signature="with ProcessPoolExecutor(cores) as pool: pool.map(fn, items, chunksize=k)",
        before="results = [transform_{s}(x) for x in items]",
        after=(
            "with ProcessPoolExecutor(os.cpu_count()) as pool:\n    results = "
            "list(pool.map(transform_{s}, items, chunksize=64))"
        ),
        applicable_to=["python", "cpu-bound batch jobs"],
        replaces="single-threaded loops over large batches",
    ),
    dict(
        key="async_gather",
        category="concurrency",
        name="Concurrent fetch of {p} with asyncio.gather",
        description=(
            "Fetch many {p} concurrently with a semaphore limiting in-flight requests, instead of "
            "awaiting them one after another."
        ),
        signature="async fetch_all(ids) -> list[{T}]: gather(*(bounded(fetch(i))))",
        before="for i in ids:\n    out.append(await fetch_{s}(i))",
        after=(
            "sem = asyncio.Semaphore(32)\nasync def one(i):\n    async with sem:\n        return "
            "await fetch_{s}(i)\nout = await asyncio.gather(*(one(i) for i in ids))"
        ),
        applicable_to=["asyncio", "io-bound fan-out"],
        replaces="sequential awaits in a loop",
    ),
    dict(
        key="read_write_lock",
        category="concurrency",
        name="Readers-writer lock around the {p} index",
        description=(
            "Let many readers search the in-memory {s} index at once and give writers exclusive "
            "access, so updates never tear a read."
        ),
        signature="with lock.read(): search(...)  /  with lock.write(): rebuild(...)",
        before="with mutex:\n    return index.search(q)  # readers serialise behind each other",
        after=(
            "with rw.read():\n    return index.search(q)\n...\nwith rw.write():\n    "
            "index.upsert(batch)"
        ),
        applicable_to=["in-memory indexes", "read-mostly data"],
        replaces="a single mutex for reads and writes",
    ),
    dict(
        key="optimistic_locking",
        category="concurrency",
        name="Optimistic locking on {p}",
        description=(
            "Store a version number with each {s}; an update succeeds only if the version is "
            "unchanged and retries otherwise, avoiding long-held row locks."
        ),
        signature="UPDATE {s} SET ..., version = version + 1 WHERE id = ? AND version = ?",
        before="SELECT ... FOR UPDATE; -- held while the user edits the {s}",
        after=(
            'rows = db.execute("UPDATE {s} SET data=?, version=version+1 WHERE id=? AND '
            'version=?", ...)\nif rows == 0:\n    raise Conflict()'
        ),
        applicable_to=["sql", "redis WATCH", "collaborative editing"],
        replaces="pessimistic locks held across user think time",
    ),
    dict(
        key="actor_mailbox",
        category="concurrency",
        name="Single-owner actor for {p} state",
        description=(
            "Give the mutable state of {p} to one task that processes messages from its mailbox in "
            "order; other tasks send messages instead of sharing locks."
        ),
        signature="actor.send(Update({s}_id, delta)); actor loop owns the dict",
        before="with lock:\n    state[{s}_id] += delta  # many locks, many deadlock risks",
        after=(
            "await mailbox.put(Update({s}_id, delta))\n# the actor: while msg := await "
            "mailbox.get(): state[msg.id] += msg.delta"
        ),
        applicable_to=["asyncio", "erlang-style systems", "agent tracts"],
        replaces="fine-grained locks over shared state",
    ),
    # ---------------------------------------------------------------- data access
    dict(
        key="batch_writes",
        category="data_access",
        name="Batch {p} writes into one transaction",
        description=(
            "Collect {p} and write them with one multi-row statement inside one transaction, "
            "fsyncing once per batch instead of once per row."
        ),
        signature="save_many({s}s: list[{T}]) -> int: executemany in BEGIN ... COMMIT",
        before=(
            'for x in {s}s:\n    db.execute("INSERT INTO {s} VALUES (?, ?)", x)\n    db.commit()'
        ),
        after='with db:\n    db.executemany("INSERT INTO {s} VALUES (?, ?)", {s}s)',
        applicable_to=["sqlite", "postgres", "bulk loads"],
        replaces="one commit per row",
    ),
    dict(
        key="n_plus_one",
        category="data_access",
        name="Eager loading to remove N+1 queries for {p}",
        description=(
            "Load {p} together with their related rows in one query (join or IN list) instead of "
            "one extra query per row."
        ),
        signature="list_{s}s() -> list[{T}]: SELECT ... WHERE owner_id IN (...)",
        before="for x in db.all({T}):\n    x.owner = db.get(Owner, x.owner_id)",
        after=(
            "rows = db.all({T})\nowners = {{o.id: o for o in db.where(Owner, id__in={{r.owner_id "
            "for r in rows}})}}\nfor r in rows:\n    r.owner = owners[r.owner_id]"
        ),
        applicable_to=["orms", "sql", "graphql resolvers"],
        replaces="one query per row in a loop",
    ),
    dict(
        key="keyset_pagination",
        category="data_access",
        name="Keyset pagination over {p}",
        description=(
            "Page through {p} with WHERE id > last_seen ORDER BY id LIMIT n, which stays fast deep "
            "into the table, instead of OFFSET."
        ),
        signature="page_{s}s(after: int, n: int) -> list[{T}]",
        before="SELECT * FROM {s} ORDER BY id LIMIT 100 OFFSET 250000",
        after="SELECT * FROM {s} WHERE id > :after ORDER BY id LIMIT 100",
        applicable_to=["sql", "cypher", "redis sorted sets"],
        replaces="OFFSET pagination that scans skipped rows",
    ),
    dict(
        key="parameterised_queries",
        category="data_access",
        name="Parameterised queries for {p}",
        description=(
            "Pass values for {p} as query parameters, never by string formatting, so input that "
            "looks like SQL or Cypher is stored literally and plans are cached."
        ),
        signature="db.execute(query_with_placeholders, params)",
        before="db.execute(f\"SELECT * FROM {s} WHERE name = '{{name}}'\")",
        after='db.execute("SELECT * FROM {s} WHERE name = ?", (name,))',
        applicable_to=["sql", "cypher", "security"],
        replaces="string-built queries open to injection",
    ),
    dict(
        key="upsert",
        category="data_access",
        name="Atomic upsert of {p}",
        description=(
            "Insert a {s} or update it if the key exists in one statement (ON CONFLICT / MERGE) "
            "instead of select-then-insert, which races under concurrency."
        ),
        signature="INSERT ... ON CONFLICT (id) DO UPDATE SET ...",
        before="if db.exists({T}, id):\n    db.update(...)\nelse:\n    db.insert(...)",
        after=(
            "INSERT INTO {s} (id, data) VALUES (?, ?)\nON CONFLICT (id) DO UPDATE SET data = "
            "excluded.data"
        ),
        applicable_to=["sqlite", "postgres", "neo4j MERGE"],
        replaces="check-then-act races",
    ),
    dict(
        key="unwind_batch",
        category="data_access",
        name="UNWIND batches of {p} into Neo4j",
        description=(
            "Send {p} to Neo4j as one list parameter and UNWIND it in a single MERGE statement, "
            "instead of one round trip per node."
        ),
        signature="UNWIND $rows AS row MERGE (n:{T} {{id: row.id}}) SET n += row.props",
        before=(
            'for r in rows:\n    session.run("MERGE (n:{T} {{id: $id}}) SET n.data = $data", **r)'
        ),
        after=(
            'session.run("UNWIND $rows AS row MERGE (n:{T} {{id: row.id}}) SET n.data = row.data", '
            "rows=rows)"
        ),
        applicable_to=["neo4j", "cypher", "graph ingestion"],
        replaces="one Cypher round trip per node",
    ),
    dict(
        key="connection_pool",
        category="data_access",
        name="Connection pool for the {p} database",
        description=(
            "Reuse a bounded pool of database connections for {p} instead of opening a connection "
            "per request; set pool size and acquisition timeout explicitly."
        ),
        signature="pool = create_pool(min=2, max=20, timeout=5); with pool.connection() as c: ...",
        before="conn = psycopg.connect(dsn)  # per request, 30 ms handshake each",
        after=(
            "pool = ConnectionPool(dsn, min_size=2, max_size=20, timeout=5)\nwith "
            "pool.connection() as conn:\n    ..."
        ),
        applicable_to=["postgres", "redis", "neo4j driver"],
        replaces="connect-per-request",
    ),
    # ---------------------------------------------------------------- API design
    dict(
        key="cursor_api",
        category="api_design",
        name="Opaque cursors in the {p} list API",
        description=(
            "Return an opaque next-page cursor with each page of {p} so clients cannot depend on "
            "offsets and the server can change how it pages."
        ),
        signature="GET /{s}s?cursor=... -> {{items, next_cursor}}",
        before="GET /{s}s?page=7&per_page=50",
        after=(
            'GET /{s}s?cursor=eyJhZnRlciI6MTIzNDV9\n-> {{"items": [...], "next_cursor": '
            '"eyJhZnRlciI6MTIzOTV9"}}'
        ),
        applicable_to=["rest", "graphql"],
        replaces="page-number pagination",
    ),
    dict(
        key="explicit_errors",
        category="api_design",
        name="Typed error tree for the {p} client",
        description=(
            "Translate driver and HTTP errors from the {p} backend into a small documented "
            "exception hierarchy raised from the original, so callers catch meaningful types."
        ),
        signature="class {T}Error(Exception); class {T}NotFound({T}Error); raise ... from exc",
        before="except Exception as e:\n    raise RuntimeError(str(e))",
        after=(
            "except httpx.HTTPStatusError as exc:\n    if exc.response.status_code == 404:\n       "
            " raise {T}NotFound(id) from exc\n    raise {T}Error(str(exc)) from exc"
        ),
        applicable_to=["python libraries", "sdk design"],
        replaces="leaking driver exceptions to callers",
    ),
    dict(
        key="validate_at_boundary",
        category="api_design",
        name="Validate {p} at the boundary",
        description=(
            "Check shapes, types and ranges of incoming {p} once where they enter the system and "
            "work with trusted values inside, instead of defensive checks everywhere."
        ),
        signature="parse_{s}(raw: dict) -> {T}  # raises ValidationError with the field path",
        before=(
            "def handle(raw):\n    if 'id' in raw and raw['id']: ...  # repeated in ten functions"
        ),
        after="{s} = {T}.model_validate(raw)  # one place, clear errors\nhandle({s})",
        applicable_to=["pydantic", "msgspec", "public APIs"],
        replaces="scattered ad-hoc validation",
    ),
    dict(
        key="backend_injection",
        category="api_design",
        name="Injectable backend for the {p} service",
        description=(
            "Let the {p} service take its storage backend as an optional constructor argument and "
            "build the default itself, so tests pass a real in-memory backend instead of patching."
        ),
        signature="{T}Service(backend: {T}Backend | None = None)",
        before="class {T}Service:\n    def __init__(self):\n        self.db = ProductionDB()",
        after=(
            "class {T}Service:\n    def __init__(self, backend=None):\n        self.backend = "
            "backend or SQLiteBackend(default_path())"
        ),
        applicable_to=["python", "testing", "httpx-style transports"],
        replaces="monkeypatching globals in tests",
    ),
    dict(
        key="versioned_schema",
        category="api_design",
        name="Versioned schema for stored {p}",
        description=(
            "Record a schema version with stored {p} and migrate forward on read or at start-up, "
            "refusing data from a newer version instead of misreading it."
        ),
        signature='PRAGMA user_version / {{"version": 2, ...}} + migrate(v_from, v_to)',
        before="data = json.load(f)  # silently misreads files from a newer release",
        after=(
            "if doc['version'] > SUPPORTED:\n    raise SchemaTooNew(doc['version'])\ndoc = "
            "migrate(doc, to=SUPPORTED)"
        ),
        applicable_to=["file formats", "sqlite", "json documents"],
        replaces="unversioned persisted formats",
    ),
    # ---------------------------------------------------------------- messaging
    dict(
        key="outbox",
        category="messaging",
        name="Transactional outbox for {p} events",
        description=(
            "Write the {s} change and its event to an outbox table in the same transaction; a "
            "relay publishes outbox rows afterwards, so no event is lost or sent for a rolled-back "
            "change."
        ),
        signature="with tx: save({s}); outbox.add(event) ; relay: publish(outbox.pending())",
        before=(
            'db.save({s})\nbroker.publish("{s}.updated", {s})  # lost if the process dies in '
            "between"
        ),
        after=(
            'with db.transaction():\n    db.save({s})\n    db.insert("outbox", event_for({s}))\n# '
            "relay loop publishes and marks rows sent"
        ),
        applicable_to=["event-driven systems", "kafka", "redis streams"],
        replaces="dual writes to database and broker",
    ),
    dict(
        key="consumer_group_ack",
        category="messaging",
        name="Consumer groups with explicit ack for {p}",
        description=(
            "Consume {p} from a Redis stream in a consumer group and XACK only after processing; "
            "pending entries of dead consumers are reclaimed with XAUTOCLAIM."
        ),
        signature="XREADGROUP GROUP g c STREAMS {s}s > ; process ; XACK {s}s g id",
        before="msg = redis.lpop('{s}s')  # lost if the worker crashes mid-processing",
        after=(
            "for stream, entries in r.xreadgroup('workers', name, {{'{s}s': '>'}}, count=64, "
            "block=1000):\n    for id, fields in entries:\n        handle(fields)\n        "
            "r.xack('{s}s', 'workers', id)"
        ),
        applicable_to=["redis streams", "at-least-once processing"],
        replaces="pop-and-hope queues",
    ),
    dict(
        key="priority_routing",
        category="messaging",
        name="Priority routing of {p}",
        description=(
            "Route {p} through per-priority queues and always drain higher priorities first, with "
            "an ageing rule so low-priority work is not starved forever."
        ),
        signature="route(msg: {T}) -> queue[msg.priority]; next() -> highest non-empty, aged",
        before="queue.append(msg)  # urgent messages wait behind bulk traffic",
        after=(
            "queues[msg.priority].append(msg)\nnext_msg = pop_highest(queues, max_wait={{LOW: "
            "5.0}})"
        ),
        applicable_to=["agent routers", "schedulers", "corpus callosum"],
        replaces="a single FIFO for all priorities",
    ),
    dict(
        key="dead_letter",
        category="messaging",
        name="Dead-letter queue for poison {p}",
        description=(
            "After N failed processing attempts move a {s} to a dead-letter queue with the error "
            "attached, so one bad message cannot block the stream."
        ),
        signature="on failure: attempts += 1; if attempts > N: dlq.add(msg, error)",
        before="while True:\n    handle(msg)  # the same bad message crashes the worker forever",
        after=(
            "if msg.attempts >= 5:\n    dlq.add(msg, error=repr(exc))\n    ack(msg)\nelse:\n    "
            "retry_later(msg)"
        ),
        applicable_to=["queues", "streams", "webhooks"],
        replaces="infinite redelivery of poison messages",
    ),
    dict(
        key="dedupe_consumer",
        category="messaging",
        name="Deduplicating consumer for {p}",
        description=(
            "Record processed {s} ids in a set with a TTL and skip repeats, turning at-least-once "
            "delivery into effectively-once processing."
        ),
        signature="if seen.add(msg.id): process(msg)  # SET NX EX",
        before="process(msg)  # redelivered messages are processed twice",
        after='if r.set(f"done:{{msg.id}}", 1, nx=True, ex=86400):\n    process(msg)',
        applicable_to=["redis", "kafka consumers"],
        replaces="duplicate processing after redelivery",
    ),
    # ---------------------------------------------------------------- observability
    dict(
        key="structured_logging",
        category="observability",
        name="Structured logs for {p} handling",
        description=(
            "Log events about {p} as key-value records with a request id instead of formatted "
            "sentences, so they can be filtered and aggregated."
        ),
        signature='log.info("{s}.processed", {s}_id=..., duration_ms=..., request_id=...)',
        before='print(f"processed {s} {{id}} in {{ms}}ms")',
        after='log.info("{s}.processed", {s}_id=id, duration_ms=ms, request_id=ctx.request_id)',
        applicable_to=["structlog", "json logs", "log pipelines"],
        replaces="free-text log lines",
    ),
    dict(
        key="red_metrics",
        category="observability",
        name="RED metrics for the {p} endpoint",
        description=(
            "Export rate, errors and a latency histogram for the {p} endpoint, labelled by route "
            "and status class, and alert on error ratio and p99."
        ),
        signature="REQUESTS.labels(route, code).inc(); LATENCY.labels(route).observe(s)",
        before="# no metrics: incidents are found by users",
        after=(
            "with LATENCY.labels('/{s}s').time():\n    resp = "
            "handle(req)\nREQUESTS.labels('/{s}s', resp.status // 100).inc()"
        ),
        applicable_to=["prometheus", "http services"],
        replaces="debugging latency from logs",
    ),
    dict(
        key="shadow_compare",
        category="observability",
        name="Shadow mode for the new {p} implementation",
        description=(
            "Run the new {s} code path next to the old one on live traffic, return the old result, "
            "and record mismatches and both latencies until the new path is trusted."
        ),
        signature="result = old(x); shadow(new, x, compare=same)",
        before="return new_impl(x)  # switched over in one release",
        after=(
            "result = old_impl(x)\ncandidate = new_impl(x)\nmetrics.shadow(match=same(result, "
            "candidate))\nreturn result"
        ),
        applicable_to=["migrations", "kernel rollouts", "feature flags"],
        replaces="big-bang switches to rewritten code",
    ),
    dict(
        key="canary_rollout",
        category="observability",
        name="Canary rollout of {p} changes",
        description=(
            "Send a small random share of {p} traffic to the new code path, compare error rates "
            "and latency with the rest, and widen the share only while they stay healthy."
        ),
        signature="if random() < fraction: new(x) else: old(x); auto-disable on error rate",
        before="deploy to 100% and watch dashboards",
        after=(
            "use_new = random.random() < flags.fraction('{s}_v2')\nresult = new(x) if use_new else "
            "old(x)"
        ),
        applicable_to=["feature flags", "deployments"],
        replaces="all-at-once rollouts",
    ),
    dict(
        key="trace_context",
        category="observability",
        name="Propagate trace context through {p} pipelines",
        description=(
            "Carry the trace and span ids with each {s} across queues and services so one request "
            "can be followed end to end."
        ),
        signature="msg.headers['traceparent'] = current_span_context()",
        before="queue.put({s})  # the trace stops at the queue",
        after="headers = {{}}\npropagate.inject(headers)\nqueue.put({s}, headers=headers)",
        applicable_to=["opentelemetry", "message queues"],
        replaces="traces that end at process boundaries",
    ),
    # ---------------------------------------------------------------- security
    dict(
        key="secrets_from_env",
        category="security",
        name="Credentials for the {p} store from the environment",
        description=(
            "Read credentials for the {p} store from environment variables or a secret manager, "
            "never from the code or the URL, and never print them in logs or errors."
        ),
        signature="auth = (os.environ['DB_USER'], os.environ['DB_PASSWORD']); redact(url) in logs",
        before='DB_URL = "postgres://admin:hunter2@db/{s}s"',
        after=(
            'auth = (os.environ["DB_USER"], os.environ["DB_PASSWORD"])\nlog.info("connecting to '
            '%s", redact(url))'
        ),
        applicable_to=["12-factor apps", "ci pipelines"],
        replaces="credentials committed in source",
    ),
    dict(
        key="least_privilege",
        category="security",
        name="Least-privilege access to {p}",
        description=(
            "Give the service that reads {p} a read-only role and a separate role for writers, so "
            "a compromised reader cannot modify data."
        ),
        signature="GRANT SELECT ON {s} TO reader; GRANT INSERT, UPDATE ON {s} TO writer",
        before="all services connect as the database owner",
        after="CREATE ROLE {s}_reader; GRANT SELECT ON {s} TO {s}_reader;",
        applicable_to=["postgres", "neo4j rbac", "redis acl"],
        replaces="one all-powerful service account",
    ),
    dict(
        key="loopback_only",
        category="security",
        name="Bind the {p} test server to loopback only",
        description=(
            "Start test servers for {p} on 127.0.0.1 with random ports and temporary directories, "
            "or inside a network namespace when the server cannot be bound, so nothing is exposed."
        ),
        signature="server(port=free_port(), bind='127.0.0.1', dir=tmp_path)",
        before="redis-server --port 6379  # listens on every interface, shared across test runs",
        after=(
            "redis-server --port $(free_port) --bind 127.0.0.1 --dir $TMP\nunshare --net sh -c 'ip "
            "link set lo up; exec server'"
        ),
        applicable_to=["pytest fixtures", "ci"],
        replaces="test servers on fixed public ports",
    ),
    # ---------------------------------------------------------------- testing
    dict(
        key="property_test",
        category="testing",
        name="Property-based tests for {p} encoding",
        description=(
            "Generate arbitrary {p} with Hypothesis and check that encoding then decoding gives "
            "the original back, instead of a handful of hand-picked examples."
        ),
        signature="@given(st.builds({T})) def test_roundtrip(x): assert decode(encode(x)) == x",
        before="def test_encode():\n    assert decode(encode(SAMPLE)) == SAMPLE",
        after="@given({s}s())\ndef test_roundtrip(x):\n    assert decode(encode(x)) == x",
        applicable_to=["hypothesis", "serialisers", "parsers"],
        replaces="example-only tests",
    ),
    dict(
        key="reference_impl",
        category="testing",
        name="Reference implementation check for the {p} kernel",
        description=(
            "Keep a slow, obviously correct reference for the {s} kernel and test that the fast "
            "implementation agrees with it on random inputs within a stated tolerance."
        ),
        signature="assert agree(fast(x), reference(x), tol) for x in random_inputs(seed)",
        before="assert fast(x)[0] == 0.8731  # a magic number from one run",
        after=(
            "rng = np.random.default_rng(seed)\nfor _ in range(200):\n    x = "
            "rng.standard_normal((n, d))\n    assert np.allclose(fast(x), reference(x), atol=tol)"
        ),
        applicable_to=["simd kernels", "mojo", "numpy"],
        replaces="golden numbers copied from a single run",
    ),
    dict(
        key="real_server_fixture",
        category="testing",
        name="Real server fixtures for {p} storage tests",
        description=(
            "Start a real database for the {p} storage tests in a fixture (random port, temp dir) "
            "instead of mocking the driver, so queries are exercised for real."
        ),
        signature="@pytest.fixture def redis_server(): with RedisServer() as s: yield s",
        before="mock_redis.get.return_value = b'...'",
        after=(
            "@pytest.fixture\ndef redis_server():\n    with RedisServer(binary) as server:\n       "
            " yield server"
        ),
        applicable_to=["pytest", "integration tests"],
        replaces="mocked drivers that hide query bugs",
    ),
    dict(
        key="fault_injection",
        category="testing",
        name="Fault injection in the {p} path",
        description=(
            "Make the {s} path fail on purpose (raise, wrong result, slow) under a flag, and test "
            "that fallbacks, alerts and automatic disabling react as designed."
        ),
        signature="SYNAPSE_FAULT_<feature>=raise:0.5  ->  fallback + metrics",
        before="# fallbacks only ever run during real incidents",
        after=(
            "with fault('{s}', 'raise', rate=0.5):\n    for _ in range(1000):\n        assert "
            "service.handle(x) == expected\nassert metrics.fallbacks['{s}'] > 0"
        ),
        applicable_to=["chaos testing", "runtime adapters"],
        replaces="untested fallback code",
    ),
    # ---------------------------------------------------------------- refactoring
    dict(
        key="dict_dispatch",
        category="refactoring",
        name="Dispatch table instead of if/elif chains for {p}",
        description=(
            "Replace a long if/elif chain over {s} kinds with a dict from kind to handler, making "
            "dispatch O(1) and new kinds a one-line change."
        ),
        signature="HANDLERS: dict[Kind, Callable[[{T}], R]]; HANDLERS[x.kind](x)",
        before=(
            "if x.kind == 'a':\n    return handle_a(x)\nelif x.kind == 'b':\n    return "
            "handle_b(x)\n# ... 20 more"
        ),
        after="HANDLERS = {{'a': handle_a, 'b': handle_b}}\nreturn HANDLERS[x.kind](x)",
        applicable_to=["python", "javascript", "event handlers"],
        replaces="long conditional chains",
    ),
    dict(
        key="lookup_index",
        category="refactoring",
        name="Index {p} by id instead of nested scans",
        description=(
            "Build a dict of {p} by id once and look items up in it, turning an O(n*m) nested loop "
            "into O(n+m)."
        ),
        signature="by_id = {{x.id: x for x in {s}s}}; match = by_id.get(y.{s}_id)",
        before=(
            "for y in rows:\n    for x in {s}s:\n        if x.id == y.{s}_id:\n            y.{s} = "
            "x"
        ),
        after="by_id = {{x.id: x for x in {s}s}}\nfor y in rows:\n    y.{s} = by_id.get(y.{s}_id)",
        applicable_to=["python", "data joins"],
        replaces="nested loops for lookups",
    ),
    dict(
        key="extract_function",
        category="refactoring",
        name="Extract the {p} validation into one function",
        description=(
            "Move the copy-pasted checks on {p} into one named function with a docstring and "
            "tests, and call it from every place that had a copy."
        ),
        signature="def validate_{s}(x: {T}) -> None  # raises with a clear message",
        before="if not x.id or len(x.id) > 64: raise ...  # pasted in five handlers",
        after=(
            'def validate_{s}(x):\n    """Raises InvalidInput naming the bad field."""\n    '
            "...\nvalidate_{s}(x)"
        ),
        applicable_to=["any language"],
        replaces="duplicated validation code",
    ),
    dict(
        key="dataclass_records",
        category="refactoring",
        name="Typed records for {p} instead of loose dicts",
        description=(
            "Represent {p} as frozen dataclasses with typed fields rather than dicts with string "
            "keys, so typos fail fast and editors can help."
        ),
        signature="@dataclass(frozen=True) class {T}: id: str; ...",
        before="x = {{'id': 1, 'naem': 'a'}}  # typo found in production",
        after="@dataclass(frozen=True)\nclass {T}:\n    id: str\n    name: str",
        applicable_to=["python", "typescript interfaces"],
        replaces="stringly-typed dicts",
    ),
    dict(
        key="generator_pipeline",
        category="refactoring",
        name="Streaming generator pipeline for {p}",
        description=(
            "Process {p} as a chain of generators (read, parse, filter, write) so memory stays "
            "constant however large the input is."
        ),
        signature="write(filter(parse(read(path))))  # each stage yields",
        before=(
            "rows = list(read_all(path))\nparsed = [parse(r) for r in rows]\nkept = [p for p in "
            "parsed if ok(p)]"
        ),
        after=(
            "def parsed(path):\n    for line in open(path):\n        yield parse(line)\nwrite(p "
            "for p in parsed(path) if ok(p))"
        ),
        applicable_to=["python", "etl", "log processing"],
        replaces="materialising every stage in memory",
    ),
    # ---------------------------------------------------------------- performance
    dict(
        key="vectorize_numpy",
        category="performance",
        name="Vectorised NumPy scoring of {p}",
        description=(
            "Score all {p} with one matrix-vector product in NumPy instead of a Python loop over "
            "rows; for cosine similarity, normalise once at insert time."
        ),
        signature="scores = matrix @ query  # matrix rows L2-normalised",
        before="scores = [sum(a*b for a, b in zip(row, q)) for row in {s}_vectors]",
        after=(
            "scores = {s}_matrix @ (q / np.linalg.norm(q))\ntop = np.argpartition(-scores, k)[:k]"
        ),
        applicable_to=["numpy", "similarity search"],
        replaces="per-row Python loops",
    ),
    dict(
        key="argpartition_topk",
        category="performance",
        name="Top-k of {p} scores with argpartition",
        description=(
            "Select the best k {s} scores with argpartition in O(n) and sort only those k, instead "
            "of sorting all n scores."
        ),
        signature="idx = argpartition(-s, k)[:k]; idx = idx[argsort(-s[idx], kind='stable')]",
        before="order = np.argsort(-scores)[:k]",
        after=(
            "part = np.argpartition(-scores, k - 1)[:k]\norder = part[np.argsort(-scores[part], "
            "kind='stable')]"
        ),
        applicable_to=["numpy", "ranking"],
        replaces="full sorts for a small k",
    ),
    dict(
        key="simd_kernel",
        category="performance",
        name="SIMD dot-product kernel for {p}",
        description=(
            "Compute dot products over {p} in a Mojo kernel with SIMD-width loads and several "
            "accumulators, released from the GIL, with a NumPy fallback behind the same API."
        ),
        signature="fn dot[width](a: Ptr, b: Ptr, n) -> Float32  # vectorize + 4 accumulators",
        before="score = float(np.dot(row, q))  # called per row from Python",
        after=(
            "# mojo\n@parameter\nfn step[w: Int](i: Int):\n    acc += a.load[width=w](i) * "
            "b.load[width=w](i)\nvectorize[step, simd_width](n)"
        ),
        applicable_to=["mojo", "simd", "hot loops"],
        replaces="scalar loops over float arrays",
    ),
    dict(
        key="preallocate",
        category="performance",
        name="Preallocated buffers for {p} batches",
        description=(
            "Allocate the output array for a batch of {p} once with the final size and fill it in "
            "place, instead of appending and concatenating."
        ),
        signature="out = np.empty((n, d), np.float32); out[i] = ...",
        before=(
            "parts = []\nfor b in batches:\n    parts.append(embed(b))\nmatrix = "
            "np.concatenate(parts)"
        ),
        after=(
            "matrix = np.empty((n, d), dtype=np.float32)\nfor start, b in batches:\n    "
            "matrix[start:start + len(b)] = embed(b)"
        ),
        applicable_to=["numpy", "embedding pipelines"],
        replaces="append-then-concatenate",
    ),
    dict(
        key="sort_by_length",
        category="performance",
        name="Length-sorted batching of {p} for the encoder",
        description=(
            "Sort {p} by length before batching them through a transformer so each batch pads to a "
            "similar length, then restore the original order."
        ),
        signature="order = argsort(len); embed(batches(order)); out[order] = vectors",
        before=(
            "for b in chunks(texts, 32):\n    vecs += model(b)  # short texts padded to 256 tokens"
        ),
        after=(
            "order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))\nfor chunk in "
            "chunks(order, 32):\n    out[chunk] = model([texts[i] for i in chunk])"
        ),
        applicable_to=["sentence-transformers", "bert inference"],
        replaces="padding waste in mixed-length batches",
    ),
    dict(
        key="columnar_layout",
        category="performance",
        name="Columnar layout for {p} vectors",
        description=(
            "Keep the vectors of {p} in one contiguous float32 matrix with ids and metadata in "
            "side arrays, so scans stream memory at full bandwidth."
        ),
        signature="vectors: float32[n, d] (C order); ids: list[str]; meta: list[dict]",
        before="items = [{{'id': i, 'vec': list_of_floats, 'meta': m}} for ...]",
        after=(
            "self.vectors = np.zeros((capacity, d), np.float32)\nself.ids: list[str] = "
            "[]\nself.meta: list[dict] = []"
        ),
        applicable_to=["vector search", "numpy", "mojo"],
        replaces="arrays of objects with embedded lists",
    ),
    # ---------------------------------------------------------------- agent systems
    dict(
        key="embedding_cache",
        category="agent_systems",
        name="Embedding cache for {p}, keyed by text hash",
        description=(
            "Cache embeddings of {p} under a hash of their text and the model name, so unchanged "
            "items are never sent to the embedding server twice."
        ),
        signature="key = sha256(model + text); vec = cache.get(key) or embed(text)",
        before="vectors = embedder.embed([x.text for x in {s}s])  # every run re-embeds everything",
        after=(
            'keys = [sha256(f"{{model}}\\0{{x.text}}".encode()).hexdigest() for x in '
            "{s}s]\nmissing = [i for i, k in enumerate(keys) if k not in cache]\nvectors = "
            "fill(cache, embedder.embed([{s}s[i].text for i in missing]))"
        ),
        applicable_to=["rag pipelines", "pattern maps"],
        replaces="re-embedding unchanged text",
    ),
    dict(
        key="hybrid_retrieval",
        category="agent_systems",
        name="Hybrid retrieval over {p}",
        description=(
            "Combine keyword and vector search over {p}, ranking each list on its own and merging "
            "with reciprocal rank fusion, since raw scores are not comparable."
        ),
        signature="rrf(rank_kw, rank_vec, k=60) -> ranked ids",
        before="results = vector_search(q)  # misses exact identifiers",
        after=(
            "kw = fulltext(q, 50)\nvec = vector_search(embed(q), 50)\nresults = "
            "reciprocal_rank_fusion([kw, vec], k=60)[:10]"
        ),
        applicable_to=["rag", "search"],
        replaces="vector-only retrieval",
    ),
    dict(
        key="tract_split",
        category="agent_systems",
        name="Internal/external tract split for {p}",
        description=(
            "Handle {p} that stay inside the agent (planning, memory) on an internal tract and "
            "those that reach users or tools on an external tract, with a router between them."
        ),
        signature="router.route(msg: {T}, tract=INTERNAL|EXTERNAL, priority=p)",
        before="handle(msg)  # tool calls and self-reflection share one queue",
        after=(
            "tract = EXTERNAL if msg.needs_io else INTERNAL\nrouter.send(msg, tract=tract, "
            "priority=msg.priority)"
        ),
        applicable_to=["agent architectures", "corpus callosum"],
        replaces="one undifferentiated message loop",
    ),
    dict(
        key="pattern_compression",
        category="agent_systems",
        name="Compress repeated {p} handling into a named pattern",
        description=(
            "When the same transformation of {p} appears across traces, record it once as a named "
            "pattern with a signature and example, and refer to it instead of re-deriving it."
        ),
        signature="pattern_map.add(name, signature, example) -> p_id; reuse(p_id)",
        before="# the agent re-derives the same {s} normalisation in every session",
        after=(
            'pid = pattern_map.add("normalise {s}", signature, '
            "example)\nplan.steps.append(Use(pid))"
        ),
        applicable_to=["agent memory", "pattern maps"],
        replaces="re-deriving known solutions",
    ),
    dict(
        key="fallback_runtime",
        category="agent_systems",
        name="Accelerated path with automatic fallback for {p}",
        description=(
            "Run {p} work on the accelerated kernel when it is built and healthy and on NumPy "
            "otherwise, behind one API, recording why each fallback happened."
        ),
        signature="runtime.run(op, mojo=lambda k: ..., python=lambda: ...) -> Outcome",
        before=(
            "try:\n    import fast_ext\nexcept ImportError:\n    fast_ext = None  # silently slow"
        ),
        after=(
            "outcome = runtime.feature('{s}').run('topk', mojo=lambda k, f: k.topk(...), "
            "python=lambda: np_topk(...))\nmetrics.record(outcome.runtime, outcome.fallback_reason)"
        ),
        applicable_to=["mojo", "native extensions"],
        replaces="silent import-error fallbacks",
    ),
    dict(
        key="confidence_decay",
        category="agent_systems",
        name="Confidence decay for unused {p} patterns",
        description=(
            "Lower the confidence of {s} patterns that have not been used for a while and raise it "
            "on successful reuse, so stale patterns sink in the rankings."
        ),
        signature="confidence = confidence * 0.5 ** (idle_days / half_life) (+ bonus on use)",
        before="confidence stays at its discovery value forever",
        after=(
            "idle = (now - p.last_used).days\np.confidence *= 0.5 ** (idle / 30)\nif "
            "used_successfully:\n    p.confidence = min(1.0, p.confidence + 0.05)"
        ),
        applicable_to=["pattern maps", "recommendation"],
        replaces="static confidence scores",
    ),
]

EVENTS = [
    "merged after both patterns fired on the same trace",
    "abstracted from repeated co-occurrence in code review",
    "generalised when the compression tract saw both in one plan",
    "promoted after three agents reused the combination",
    "emerged while refactoring the ingestion pipeline",
    "discovered during an incident review",
]


def build(seed: int = SEED) -> dict:
    rng = random.Random(seed)
    start = datetime(2025, 9, 1, tzinfo=UTC)
    patterns: dict[str, dict] = {}
    ids_by_category: dict[str, list[str]] = {}
    n = 0
    for family in FAMILIES:
        subjects = rng.sample(SUBJECTS, 5)
        for s, phrase, camel in subjects:
            n += 1
            pid = f"p_{n:03d}"
            fill = {"s": s, "p": phrase, "T": camel}
            discovered = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 120))
            entry: dict = {
                "name": family["name"].format(**fill),
                "description": family["description"].format(**fill),
                "signature": family["signature"].format(**fill),
                "applicable_to": list(family["applicable_to"]),
                "replaces": family["replaces"],
                "example": {
                    "before": family["before"].format(**fill),
                    "after": family["after"].format(**fill),
                    "compression_ratio": round(rng.uniform(0.18, 0.92), 2),
                },
                "confidence": round(rng.uniform(0.55, 0.98), 2),
                "abstraction_level": rng.randint(1, 5),
                "entropy_reduction": round(rng.uniform(0.05, 0.65), 3),
                "discovered_by": rng.choice(DISCOVERERS),
                "timestamp": discovered.isoformat().replace("+00:00", "Z"),
                "usage_count": int(rng.paretovariate(1.3) * 3),
                "mutations": rng.choice([0, 0, 0, 1, 1, 2, 3]),
                "category": family["category"],
                "family": family["key"],
            }
            if rng.random() < 0.3:
                entry["tags"] = rng.sample(
                    [
                        "hot-path",
                        "reviewed",
                        "needs-benchmark",
                        "production",
                        "experimental",
                        "mojo-candidate",
                    ],
                    2,
                )
            if rng.random() < 0.15:
                entry["deprecated_by"] = None
            patterns[pid] = entry
            ids_by_category.setdefault(family["category"], []).append(pid)

    ids = list(patterns)
    log: list[dict] = []
    moment = start + timedelta(days=20)
    for i in range(48):
        moment += timedelta(hours=rng.randrange(6, 72))
        category = rng.choice(sorted(ids_by_category))
        pool = ids_by_category[category]
        contributors = rng.sample(pool, rng.choice([2, 2, 3, 3, 4]))
        event: dict = {
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "event": rng.choice(EVENTS),
            "contributing_patterns": contributors,
            "tract": rng.choice(["internal", "external"]),
        }
        if i % 3 == 0:
            event["new_pattern"] = rng.choice([p for p in pool if p not in contributors])
        if rng.random() < 0.2:
            event["contributing_patterns"].append(rng.choice(ids))  # a cross-category link
        log.append(event)

    return {
        "meta": {
            "name": "synapse-mojo sample pattern map",
            "version": "1.0",
            "description": (
                "Software patterns for caching, resilience, concurrency, data access, API "
                "design, messaging, observability, security, testing, refactoring, performance "
                "and agent systems."
            ),
            "generated_by": "python/synapse_mojo/_dev/generate_sample_patterns.py",
            "seed": seed,
            "pattern_count": len(patterns),
            "families": len(FAMILIES),
        },
        "patterns": patterns,
        "emergence_log": log,
    }


def main() -> None:
    json.dump(build(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
