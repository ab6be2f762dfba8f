// Deterministic fixture data for the page tests, the benchmark and the
// screenshots.
//
// A dataset is what a store holds: a list of profile *windows*, each with a
// start/end time (Unix ns), labels (host, comm, pid, exe) and folded stacks
// (`comm;frame;…;leaf count`, FlameGraph's `_[k]` / `_[j]` suffixes mark
// kernel / JIT frames). The fixture server merges the windows that start in
// [from, until) and match the label filters, exactly as the real store does.
//
// Three independent parts live at separate times so one dataset serves every
// test (and the real server can load the same windows):
//   SMALL — 60 s, three processes, hand-checkable counts, recursion, a phase
//           that changes half way (for the brush test);
//   DIFF  — 120 s, one process whose `beta` grew in the second minute;
//   BIG   — 10 s, 100k+ distinct functions and a 3000-deep stack;
//   DEMO  — an hour of a realistic-looking host (nginx, postgres, a node
//           service, a python worker) with a load spike, for screenshots.
//
// `node fixtures.mjs --out DIR` writes DIR/dataset.json for other consumers
// (e.g. a Rust test that fills a store): {"period_ns", "windows":[{start,
// end, labels, folded}]}.

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Window length used by every fixture window. */
export const WINDOW_NS = 10_000_000_000;
/** Sampling period of the fixtures (19 Hz, the agent default). */
export const PERIOD_NS = Math.round(1e9 / 19);
/** Whole seconds in ns are exact doubles, so every fixture time is one. */
export const T0 = 1_700_000_000 * 1e9;

/** Time ranges ([from, until), ns) of the three parts. */
export const RANGES = {
  small: { from: T0, until: T0 + 60e9 },
  diff: { from: T0 + 3600e9, until: T0 + 3600e9 + 120e9 },
  diffBase: { from: T0 + 3600e9, until: T0 + 3600e9 + 60e9 },
  diffCmp: { from: T0 + 3600e9 + 60e9, until: T0 + 3600e9 + 120e9 },
  big: { from: T0 + 7200e9, until: T0 + 7200e9 + 10e9 },
  demo: { from: T0 + 86400e9, until: T0 + 86400e9 + 3600e9 },
  demoBefore: { from: T0 + 86400e9 + 600e9, until: T0 + 86400e9 + 1500e9 },
  demoSpike: { from: T0 + 86400e9 + 2400e9, until: T0 + 86400e9 + 3000e9 },
};

const PROCS = {
  api: { host: 'alpha', comm: 'api', pid: '100', exe: '/usr/bin/api' },
  db: { host: 'alpha', comm: 'db', pid: '200', exe: '/usr/sbin/db' },
  worker: { host: 'beta', comm: 'worker', pid: '300', exe: '/opt/worker/bin/worker' },
  app: { host: 'gamma', comm: 'app', pid: '400', exe: '/usr/bin/app' },
};

/** Stacks of the small part for the window starting at slot k (0..5). */
export function smallStacks(proc, k) {
  switch (proc) {
    case 'api':
      return [
        ['api;main;handle_request;parse_json', 20],
        ['api;main;handle_request;render;format_number', 10],
        ['api;main;handle_request;render', 5],
        ['api;main;handle_request;compress;deflate', 8],
        ['api;main;handle_request;compress;memcpy', 2],
        ['api;main;handle_request;sys_read_[k];vfs_read_[k]', 4],
        ['api;main;gc', 3],
        [k < 3 ? 'api;main;handle_request;phase_a' : 'api;main;handle_request;phase_b', 6],
      ];
    case 'db':
      return [
        ['db;main;query;scan;compare', 12],
        ['db;main;query;sort;compare', 6],
        ['db;main;query;sort', 2],
        ['db;main;memcpy', 3],
      ];
    case 'worker':
      return [
        ['worker;main;walk;walk;walk;visit', 5],
        ['worker;main;walk;visit', 4],
        ['worker;main;walk;walk;visit', 3],
        ['worker;main;walk', 2],
        ['worker;main;js_handler_[j]', 2],
      ];
  }
  throw new Error(`unknown process ${proc}`);
}

/** Stacks of the diff part: slots 0..5 are the baseline, 6..11 the comparison. */
export function diffStacks(k) {
  const after = k >= 6;
  return [
    ['app;main;alpha', 10],
    ['app;main;beta', after ? 30 : 10],
    ['app;main;gamma', 5],
    [after ? 'app;main;new_path' : 'app;main;old_path', 3],
  ];
}

// Small deterministic PRNG (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODULES = ['net', 'http', 'db', 'json', 'tls', 'fs', 'sched', 'alloc', 'cache', 'rpc', 'log', 'codec'];
const VERBS = ['read', 'write', 'parse', 'encode', 'decode', 'flush', 'poll', 'hash', 'lookup', 'insert', 'visit', 'apply'];
const NOUNS = ['buffer', 'frame', 'header', 'row', 'page', 'token', 'entry', 'block', 'chunk', 'node', 'key', 'span'];
const COMMON_LEAVES = ['memcpy', 'malloc', 'free', '__memmove_avx_unaligned', 'pthread_mutex_lock'];

/** Depth of the deep stack in the big part (not counting the process frame). */
export const BIG_DEEP = 3000;

/**
 * Stacks of the big part: random call trees over 8 processes, ~110k distinct
 * function names, plus one 3000-frame-deep stack.
 */
export function bigStacks() {
  const rand = rng(0x5c0c4);
  const stacks = [];
  const paths = [];
  let fresh = 0;
  const freshName = () => {
    const i = fresh++;
    const m = MODULES[i % MODULES.length];
    const v = VERBS[(i >> 3) % VERBS.length];
    const n = NOUNS[(i >> 6) % NOUNS.length];
    return `${m}::${v}_${n}_${i}`;
  };
  const N = 46000;
  for (let s = 0; s < N; s++) {
    let path;
    if (s < 8 || rand() < 0.04) {
      path = [`big-${s % 8}`, 'main'];
    } else {
      const base = paths[Math.floor(rand() * paths.length)];
      const keep = 2 + Math.floor(rand() * (base.length - 1));
      path = base.slice(0, Math.min(keep, base.length));
    }
    const add = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < add; j++) path.push(freshName());
    if (rand() < 0.15) path.push(COMMON_LEAVES[Math.floor(rand() * COMMON_LEAVES.length)]);
    if (path.length > 60) path.length = 60;
    paths.push(path);
    const count = 1 + Math.floor(rand() * rand() * 60);
    stacks.push([path.join(';'), count]);
  }
  const deep = ['big-0', 'main'];
  for (let d = 0; d < BIG_DEEP - 1; d++) deep.push(`deep_${d}`);
  stacks.push([deep.join(';'), 20000]);
  return stacks;
}

// ---- DEMO: realistic-looking stacks for screenshots ------------------------

const K = (frames) => frames.split(';').map((f) => `${f}_[k]`).join(';');
const SYS_WRITE = K('entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_write;ksys_write;vfs_write;sock_write_iter;sock_sendmsg;tcp_sendmsg;tcp_sendmsg_locked;tcp_push;__tcp_push_pending_frames;tcp_write_xmit;__tcp_transmit_skb;ip_queue_xmit;ip_finish_output2;__dev_queue_xmit');
const SYS_READ = K('entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_read;ksys_read;vfs_read;sock_read_iter;sock_recvmsg;tcp_recvmsg;tcp_recvmsg_locked;skb_copy_datagram_iter;__skb_datagram_iter;_copy_to_iter');
const EPOLL = K('entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_epoll_wait;do_epoll_wait;ep_poll;schedule_hrtimeout_range;schedule;__schedule');
const PREAD = K('entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_pread64;vfs_read;ext4_file_read_iter;filemap_read;copy_page_to_iter;_copy_to_iter');

const NGX = 'nginx;__libc_start_main;main;ngx_master_process_cycle;ngx_start_worker_processes;ngx_spawn_process;ngx_worker_process_cycle;ngx_process_events_and_timers';
const PG = 'postgres;__libc_start_main;main;PostmasterMain;ServerLoop;BackendStartup;PostgresMain;exec_simple_query';
const PGX = `${PG};PortalRun;PortalRunSelect;standard_ExecutorRun;ExecutePlan`;
const NODE = 'node;__libc_start_main;node::Start;node::NodeMainInstance::Run;node::SpinEventLoop;uv_run';
const JS = `${NODE};uv__io_poll;uv__stream_io;node::LibuvStreamWrap::OnUvRead;node::InternalCallbackScope::Close;Builtins_JSEntry_[j];processTicksAndRejections_[j]`;
const PY = 'python3;_start;__libc_start_main;Py_BytesMain;Py_RunMain;_PyEval_EvalFrameDefault;worker.py:run_[j];worker.py:process_batch_[j]';

/** Folded stacks per process, each with a weight and the load it follows. */
const DEMO_STACKS = {
  nginx: [
    [`${NGX};ngx_epoll_process_events;${EPOLL}`, 30, 'flat'],
    [`${NGX};ngx_epoll_process_events;ngx_http_wait_request_handler;ngx_http_process_request_line;ngx_http_parse_request_line`, 8, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_wait_request_handler;ngx_http_process_request_line;ngx_http_process_request_headers;ngx_http_process_request;ngx_http_handler;ngx_http_core_run_phases;ngx_http_proxy_handler;ngx_http_upstream_init;ngx_http_upstream_connect;ngx_event_connect_peer;__connect;${K('entry_SYSCALL_64_after_hwframe;do_syscall_64;__sys_connect;inet_stream_connect;tcp_v4_connect')}`, 10, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_upstream_handler;ngx_http_upstream_process_header;ngx_http_proxy_process_status_line;ngx_http_parse_status_line`, 6, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_upstream_handler;ngx_http_upstream_send_response;ngx_http_send_header;ngx_http_gzip_header_filter;ngx_http_gzip_body_filter;deflate;deflate_slow;longest_match`, 22, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_upstream_handler;ngx_http_upstream_send_response;ngx_http_send_header;ngx_http_gzip_header_filter;ngx_http_gzip_body_filter;deflate;deflate_slow;fill_window;__memmove_avx_unaligned_erms`, 7, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_upstream_handler;ngx_http_write_filter;ngx_linux_sendfile_chain;ngx_writev;writev;${SYS_WRITE}`, 18, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_ssl_handshake_handler;ngx_ssl_handshake;SSL_do_handshake;ossl_statem_accept;tls_process_client_key_exchange;EVP_PKEY_derive;ecx_derive;x25519_scalar_mult`, 12, 'web'],
    [`${NGX};ngx_epoll_process_events;ngx_http_ssl_handshake;ngx_ssl_recv;SSL_read;ssl3_read_bytes;aes_gcm_cipher;aesni_gcm_decrypt`, 9, 'web'],
  ],
  postgres: [
    [`${PG};pq_getbyte;pq_recvbuf;secure_read;recv;${SYS_READ}`, 10, 'flat'],
    [`${PG};pg_parse_query;raw_parser;base_yyparse;core_yylex`, 6, 'web'],
    [`${PG};pg_plan_queries;pg_plan_query;planner;standard_planner;subquery_planner;grouping_planner;query_planner;make_one_rel;set_base_rel_pathlists;create_index_paths`, 8, 'web'],
    [`${PGX};ExecProcNode;ExecIndexScan;IndexNext;index_getnext_slot;index_fetch_heap;heapam_index_fetch_tuple;ReadBufferExtended;ReadBuffer_common;BufTableLookup;hash_search_with_hash_value`, 14, 'web'],
    [`${PGX};ExecProcNode;ExecIndexScan;IndexNext;index_getnext_slot;btgettuple;_bt_first;_bt_search;_bt_binsrch;_bt_compare;varstr_cmp;__memcmp_avx2_movbe`, 10, 'web'],
    [`${PGX};ExecProcNode;ExecSort;tuplesort_performsort;qsort_tuple;comparetup_heap;varstr_cmp;__memcmp_avx2_movbe`, 6, 'spike'],
    [`${PGX};ExecProcNode;ExecHashJoin;ExecScanHashBucket;ExecQual;int4eq`, 5, 'web'],
    [`${PGX};ExecProcNode;ExecSeqScan;ExecScan;SeqNext;heap_getnextslot;heapgettup_pagemode;heapgetpage;ReadBufferExtended;ReadBuffer_common;smgrread;mdread;FileRead;pread64;${PREAD}`, 4, 'spike'],
    [`${PGX};ExecProcNode;ExecSeqScan;ExecScan;ExecQual;ExecInterpExpr;texteq;__memcmp_avx2_movbe`, 14, 'spike'],
    [`${PGX};ExecProcNode;ExecSeqScan;ExecScan;SeqNext;heap_getnextslot;heapgettup_pagemode;heap_page_prune_opt`, 5, 'spike'],
    [`${PG};PortalRun;PortalRunSelect;printtup;pq_endmessage;pq_putmessage;socket_putmessage;internal_flush;secure_write;send;${SYS_WRITE}`, 7, 'web'],
  ],
  node: [
    [`${NODE};uv__io_poll;epoll_pwait;${EPOLL}`, 20, 'flat'],
    [`${JS};handleRequest_[j];router.handle_[j];Layer.handle_[j];apiHandler_[j];JSON.parse_[j];v8::internal::JsonParser::ParseJson`, 10, 'web'],
    [`${JS};handleRequest_[j];router.handle_[j];Layer.handle_[j];apiHandler_[j];renderTemplate_[j];compileTemplate_[j];escapeHtml_[j];String.prototype.replace_[j];v8::internal::RegExpImpl::Exec`, 16, 'web'],
    [`${JS};handleRequest_[j];router.handle_[j];Layer.handle_[j];apiHandler_[j];renderTemplate_[j];JSON.stringify_[j];v8::internal::JsonStringifier::Serialize`, 12, 'web'],
    [`${JS};handleRequest_[j];router.handle_[j];Layer.handle_[j];apiHandler_[j];db.query_[j];pg.Client.query_[j];Connection.send_[j];node::StreamBase::WriteBuffer;uv_try_write;write;${SYS_WRITE}`, 8, 'web'],
    [`${NODE};v8::platform::DefaultWorkerThreadsTaskRunner::RunTask;v8::internal::ScavengeJob::Task::RunInternal;v8::internal::Heap::Scavenge;v8::internal::ScavengerCollector::CollectGarbage;v8::internal::Scavenger::ScavengePage`, 9, 'web'],
    [`${NODE};v8::platform::DefaultWorkerThreadsTaskRunner::RunTask;v8::internal::MarkCompactCollector::CollectGarbage;v8::internal::MarkCompactCollector::MarkLiveObjects;v8::internal::ConcurrentMarking::Run`, 5, 'spike'],
  ],
  python3: [
    [`${PY};json.loads_[j];json.decoder.JSONDecoder.decode_[j];scanner_call;scan_once_unicode;_parse_object_unicode`, 9, 'flat'],
    [`${PY};transform_[j];numpy.core.multiarray.dot;cblas_dgemm;dgemm_kernel_HASWELL`, 14, 'flat'],
    [`${PY};transform_[j];normalize_[j];re.Pattern.sub_[j];pattern_subx;sre_ucs1_search`, 6, 'flat'],
    [`${PY};write_results_[j];psycopg2.cursor.execute;pq_execute;PQexec;pqSendQuery;pqFlush;send;${SYS_WRITE}`, 5, 'flat'],
    ['python3;_start;__libc_start_main;Py_BytesMain;Py_RunMain;_PyEval_EvalFrameDefault;gc_collect_main;deduce_unreachable;visit_reachable', 3, 'flat'],
  ],
};

const DEMO_PROCS = {
  nginx: { host: 'web-1', comm: 'nginx', pid: '2187', exe: '/usr/sbin/nginx' },
  postgres: { host: 'db-1', comm: 'postgres', pid: '911', exe: '/usr/lib/postgresql/15/bin/postgres' },
  node: { host: 'web-1', comm: 'node', pid: '3342', exe: '/usr/bin/node' },
  python3: { host: 'worker-1', comm: 'python3', pid: '5120', exe: '/usr/bin/python3.11' },
};

/** Windows of the demo hour: traffic follows a daily-ish curve, a slow query spikes at 40–50 min. */
export function demoWindows() {
  const rand = rng(0xde70);
  const out = [];
  for (let k = 0; k < 360; k++) {
    const start = RANGES.demo.from + k * WINDOW_NS;
    const minute = k / 6;
    const web = 0.55 + 0.3 * Math.sin(minute / 9) + 0.1 * rand();
    const spike = minute >= 40 && minute < 50 ? 2.6 + 0.4 * Math.sin(minute * 2) : 0.25;
    for (const [proc, stacks] of Object.entries(DEMO_STACKS)) {
      const list = [];
      for (const [line, w, shape] of stacks) {
        const f = shape === 'web' ? web : shape === 'spike' ? spike : 0.9 + 0.2 * rand();
        const n = Math.round(w * f * (0.8 + 0.4 * rand()));
        if (n > 0) list.push([line, n]);
      }
      out.push({ start, end: start + WINDOW_NS, labels: { ...DEMO_PROCS[proc] }, stacks: list });
    }
  }
  return out;
}

/**
 * Off-CPU windows of the small part (`measure: 'off-cpu'`, counts in ns):
 * the api process waiting in two places, at slot k (0..5).
 */
export function offCpuStacks(k) {
  return [
    ['api;main;handle_request;read_socket;__schedule_[k]', 1_500_000_000 + k * 1_000_000],
    ['api;main;idle_loop;epoll_wait;__schedule_[k]', 8_000_000_000 - k * 1_000_000],
  ];
}

/** Builds the whole dataset: an array of windows sorted by start. */
export function buildDataset() {
  const windows = [];
  for (let k = 0; k < 6; k++) {
    const start = RANGES.small.from + k * WINDOW_NS;
    for (const p of ['api', 'db', 'worker']) {
      windows.push({ start, end: start + WINDOW_NS, labels: { ...PROCS[p] }, stacks: smallStacks(p, k) });
    }
    windows.push({ start, end: start + WINDOW_NS, labels: { ...PROCS.api }, stacks: offCpuStacks(k), measure: 'off-cpu' });
  }
  for (let k = 0; k < 12; k++) {
    const start = RANGES.diff.from + k * WINDOW_NS;
    windows.push({ start, end: start + WINDOW_NS, labels: { ...PROCS.app }, stacks: diffStacks(k) });
  }
  windows.push({
    start: RANGES.big.from,
    end: RANGES.big.from + WINDOW_NS,
    labels: { host: 'delta', comm: 'big', pid: '500', exe: '/usr/bin/big' },
    stacks: bigStacks(),
  });
  windows.push(...demoWindows());
  windows.sort((a, b) => a.start - b.start);
  return { period_ns: PERIOD_NS, windows };
}

/**
 * Independent reference: merges the folded stacks of every window of
 * `measure` ('cpu' or 'off-cpu') that starts in [from, until) and matches
 * `labels` ([[k, v], …]). Tests compute their expectations from this, never
 * from the server.
 */
export function mergeStacks(dataset, from, until, labels = [], measure = 'cpu') {
  const merged = new Map();
  for (const w of dataset.windows) {
    if (w.start < from || w.start >= until) continue;
    if ((w.measure || 'cpu') !== measure) continue;
    if (!labels.every(([k, v]) => w.labels[k] === v)) continue;
    for (const [line, n] of w.stacks) merged.set(line, (merged.get(line) || 0) + n);
  }
  return merged;
}

/** Strips FlameGraph's kind suffixes (`_[k]`, `_[j]`, …) from a frame. */
export function frameName(f) {
  return f.replace(/_\[[kjiw]\]$/, '');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--out');
  if (i < 0 || !process.argv[i + 1]) {
    console.error('usage: node fixtures.mjs --out DIR');
    process.exit(2);
  }
  const dir = process.argv[i + 1];
  mkdirSync(dir, { recursive: true });
  const ds = buildDataset();
  const out = {
    period_ns: ds.period_ns,
    windows: ds.windows.map((w) => ({
      start: w.start,
      end: w.end,
      labels: w.labels,
      measure: w.measure || 'cpu',
      folded: w.stacks.map(([l, n]) => `${l} ${n}`).join('\n') + '\n',
    })),
  };
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify(out));
  console.log(`wrote ${join(dir, 'dataset.json')} (${out.windows.length} windows)`);
}
