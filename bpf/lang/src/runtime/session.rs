//! A running program: the event loop and everything it prints.
//!
//! The session owns the loaded objects and the two output streams. It
//! turns ring-buffer records into output in the order they were sent,
//! runs `end` probes when the program stops (by `exit()`, Ctrl-C or the
//! traced process exiting) and prints every map at the end, as bpftrace
//! does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags};

use super::events::{decode, Action, Event};
use super::load::Loaded;
use super::{OutputFormat, RunError};
use crate::codegen::{layout, Compiled, ProgKind, COUNTER_LOST, COUNTER_MAP_FULL};
use crate::output::{json, text, MapData, RawEntries, Value};
use crate::printf::Arg;
use crate::sema::{AggKind, Attach, Type};

/// How long one wait for events lasts before signals are checked.
const POLL: Duration = Duration::from_millis(100);

/// Whether the program goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit(i64),
}

pub(super) struct Session<'a> {
    pub(super) compiled: &'a Compiled,
    pub(super) loaded: Loaded,
    pub(super) format: OutputFormat,
    pub(super) out: &'a mut dyn Write,
    pub(super) err: &'a mut dyn Write,
    pub(super) cpus: usize,
    pub(super) stacks: super::stacks::Stacks,
}

fn io(e: std::io::Error) -> RunError {
    RunError::Io(e.to_string())
}

impl Session<'_> {
    /// Runs the `begin` or `end` programs.
    pub(super) fn run_special(&mut self, begin: bool) -> Result<(), RunError> {
        for (def, program) in self.compiled.programs.iter().zip(&self.loaded.programs) {
            let special = def.kind == ProgKind::RunOnce
                && def.instances.iter().any(|i| {
                    matches!(
                        (&i.attach, begin),
                        (Attach::Begin, true) | (Attach::End, false)
                    )
                });
            if special {
                scorch_bpf::run_once::run_once(program)
                    .map_err(|e| RunError::Bpf(format!("running {}: {e}", def.name())))?;
            }
        }
        Ok(())
    }

    /// Handles events until the program stops; returns the exit code.
    /// `attached` is dropped (detaching every probe) when it stops.
    pub(super) fn event_loop(
        &mut self,
        attached: super::attach::Attachments,
        pid: Option<u32>,
    ) -> Result<i64, RunError> {
        let queue: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
        let sink = queue.clone();
        let events = &self.loaded.maps[self.compiled.events];
        let reader = scorch_bpf::ringbuf::RingBufReader::new(events, move |record: &[u8]| {
            sink.borrow_mut().push_back(record.to_vec());
            0
        })
        .map_err(|e| RunError::Bpf(e.to_string()))?;
        let mut code = None;
        while code.is_none() {
            reader
                .poll(POLL)
                .map_err(|e| RunError::Bpf(e.to_string()))?;
            code = self.handle_queue(&queue)?;
            if super::signals::interrupted() || pid.is_some_and(|p| !alive(p)) {
                break;
            }
        }
        drop(attached);
        if code.is_none() {
            // Stopped from outside: what was already sent still prints.
            reader.drain().map_err(|e| RunError::Bpf(e.to_string()))?;
            code = self.handle_queue(&queue)?;
        }
        queue.borrow_mut().clear();
        // `end` probes print even after exit().
        self.run_special(false)?;
        reader.drain().map_err(|e| RunError::Bpf(e.to_string()))?;
        self.handle_queue(&queue)?;
        Ok(code.unwrap_or(0))
    }

    /// Handles queued records up to the first `exit()`; returns its code.
    fn handle_queue(
        &mut self,
        queue: &Rc<RefCell<VecDeque<Vec<u8>>>>,
    ) -> Result<Option<i64>, RunError> {
        loop {
            let Some(record) = queue.borrow_mut().pop_front() else {
                return Ok(None);
            };
            if let Flow::Exit(code) = self.handle(&record)? {
                queue.borrow_mut().clear();
                return Ok(Some(code));
            }
        }
    }

    fn handle(&mut self, record: &[u8]) -> Result<Flow, RunError> {
        let Some(event) = decode(record) else {
            return Ok(Flow::Continue);
        };
        match event {
            Event::Exit(code) => return Ok(Flow::Exit(code)),
            Event::Printf { id, record, action } => {
                let Some(info) = self.compiled.printfs.get(id) else {
                    return Ok(Flow::Continue);
                };
                let (offsets, _) = layout::record(&info.args);
                let args: Vec<Arg> = info
                    .args
                    .iter()
                    .zip(offsets)
                    .map(|(ty, off)| {
                        let bytes = record.get(off as usize..).unwrap_or(&[]);
                        let mut v = Value::decode(bytes, &ty.widened());
                        self.stacks.capture(&v);
                        self.stacks
                            .resolve(&mut v, self.compiled, &self.loaded.maps);
                        arg(v)
                    })
                    .collect();
                let bytes = info.format.render(&args);
                self.act(action, &bytes)?;
            }
            Event::Time(id) => {
                let Some(fmt) = self.compiled.time_formats.get(id) else {
                    return Ok(Flow::Continue);
                };
                let now = super::clock::now(fmt);
                match self.format {
                    OutputFormat::Text => self.out.write_all(now.as_bytes()).map_err(io)?,
                    OutputFormat::Json => self
                        .out
                        .write_all(json::message("time", &json::string(now.as_bytes())).as_bytes())
                        .map_err(io)?,
                }
            }
            Event::Join { id, strings } => {
                let Some(delim) = self.compiled.join_delims.get(id) else {
                    return Ok(Flow::Continue);
                };
                let joined = strings.join(delim.as_slice());
                match self.format {
                    OutputFormat::Text => {
                        self.out.write_all(&joined).map_err(io)?;
                        self.out.write_all(b"\n").map_err(io)?;
                    }
                    OutputFormat::Json => self
                        .out
                        .write_all(json::message("join", &json::string(&joined)).as_bytes())
                        .map_err(io)?,
                }
            }
            Event::Value { id, record } => {
                let Some(ty) = self.compiled.value_prints.get(id) else {
                    return Ok(Flow::Continue);
                };
                let (offsets, _) = layout::record(std::slice::from_ref(ty));
                let mut v = Value::decode(record.get(offsets[0] as usize..).unwrap_or(&[]), ty);
                self.stacks.capture(&v);
                self.stacks
                    .resolve(&mut v, self.compiled, &self.loaded.maps);
                let line = match self.format {
                    OutputFormat::Text => format!("{}\n", text::value(&v)),
                    OutputFormat::Json => json::message("value", &json::value(&v)),
                };
                self.out.write_all(line.as_bytes()).map_err(io)?;
            }
            Event::PrintMap { map, top, div } => self.print_map(map, top, div)?,
            // bpftrace 0.17 zeroes a `count()` map without keys rather than
            // emptying it: it prints `@: 0` after `clear(@)` (pidpersec.bt).
            Event::Clear(map) if self.is_keyless_count(map) => self.zero(map)?,
            Event::Clear(map) => {
                if let Some(m) = self.loaded.maps.get(map) {
                    scorch_bpf::map::clear(m).map_err(|e| RunError::Bpf(e.to_string()))?;
                }
            }
            Event::Zero(map) => self.zero(map)?,
        }
        self.out.flush().map_err(io)?;
        Ok(Flow::Continue)
    }

    /// Whether user map `map` is a `count()` without keys.
    fn is_keyless_count(&self, map: usize) -> bool {
        self.compiled
            .user_maps
            .get(map)
            .is_some_and(|info| info.keys.is_empty() && info.value == Type::Agg(AggKind::Count))
    }

    /// Sets every value of user map `map` to zero, keeping its keys.
    fn zero(&self, map: usize) -> Result<(), RunError> {
        if let (Some(m), Some(info)) = (self.loaded.maps.get(map), self.compiled.user_maps.get(map))
        {
            scorch_bpf::map::zero(m, layout::per_cpu(info), self.cpus)
                .map_err(|e| RunError::Bpf(e.to_string()))?;
        }
        Ok(())
    }

    /// Prints a formatted `printf` text, or runs the `system` or `cat`
    /// it asks for and prints the result.
    fn act(&mut self, action: Action, text: &[u8]) -> Result<(), RunError> {
        let (kind, result) = match action {
            Action::Print => ("printf", Ok(text.to_vec())),
            Action::System => ("syscall", super::actions::system(text)),
            Action::Cat => ("cat", super::actions::cat(text)),
        };
        let bytes = result.unwrap_or_else(|message| {
            let _ = writeln!(self.err, "ERROR: {message}");
            Vec::new()
        });
        match self.format {
            OutputFormat::Text => self.out.write_all(&bytes).map_err(io),
            OutputFormat::Json => self
                .out
                .write_all(json::message(kind, &json::string(&bytes)).as_bytes())
                .map_err(io),
        }
    }

    /// Reads user map `index` and prints it.
    pub(super) fn print_map(&mut self, index: usize, top: u32, div: u32) -> Result<(), RunError> {
        let (Some(map), Some(info)) = (
            self.loaded.maps.get(index),
            self.compiled.user_maps.get(index),
        ) else {
            return Ok(());
        };
        let raw: RawEntries = if layout::per_cpu(info) {
            scorch_bpf::map::entries_per_cpu(map).map_err(|e| RunError::Bpf(e.to_string()))?
        } else {
            scorch_bpf::map::entries(map)
                .map_err(|e| RunError::Bpf(e.to_string()))?
                .into_iter()
                .map(|(k, v)| (k, vec![v]))
                .collect()
        };
        let mut data = MapData::new(info, raw);
        self.stacks
            .resolve_entries(&mut data.entries, self.compiled, &self.loaded.maps);
        for entry in &mut data.entries {
            if let crate::output::Reduced::Series(series) = &mut entry.value {
                let unit = series.unit();
                series.times = series
                    .row_times()
                    .map(|tai| super::clock::tai_time(tai, unit.digits, unit.scale))
                    .collect();
            }
        }
        let rendered = match self.format {
            OutputFormat::Text => text::map(&data, top, div),
            OutputFormat::Json => json::map(&data, top, div),
        };
        self.out.write_all(rendered.as_bytes()).map_err(io)
    }

    /// Prints every map, by name, as at the end of a run.
    pub(super) fn print_all_maps(&mut self) -> Result<(), RunError> {
        if self.format == OutputFormat::Text {
            self.out.write_all(b"\n\n").map_err(io)?;
        }
        let mut order: Vec<usize> = (0..self.compiled.user_maps.len()).collect();
        order.sort_by(|&a, &b| {
            self.compiled.user_maps[a]
                .name
                .cmp(&self.compiled.user_maps[b].name)
        });
        for index in order {
            self.print_map(index, 0, 0)?;
        }
        self.out.flush().map_err(io)
    }

    /// Sums a counter over CPUs.
    fn counter(&self, index: u32) -> u64 {
        let Some(map) = self.loaded.maps.get(self.compiled.counters) else {
            return 0;
        };
        map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map_or(0, |values| {
                values
                    .iter()
                    .filter_map(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
                    .fold(0, u64::wrapping_add)
            })
    }

    /// Reports lost events and dropped map updates.
    pub(super) fn report_losses(&mut self, max_map_keys: u32) -> Result<(), RunError> {
        let lost = self.counter(COUNTER_LOST);
        if lost > 0 {
            match self.format {
                OutputFormat::Text => writeln!(self.err, "Lost {lost} events").map_err(io)?,
                OutputFormat::Json => self
                    .out
                    .write_all(
                        json::message("lost_events", &format!("{{\"events\": {lost}}}")).as_bytes(),
                    )
                    .map_err(io)?,
            }
        }
        let full = self.counter(COUNTER_MAP_FULL);
        if full > 0 {
            writeln!(
                self.err,
                "warning: {full} map update(s) were dropped because a map was full ({max_map_keys} entries); \
                 raise the limit with `config = {{ max_map_keys = N }}`"
            )
            .map_err(io)?;
        }
        Ok(())
    }
}

/// A printf argument decoded from an event record.
fn arg(v: Value) -> Arg {
    match v {
        Value::Str(s) => Arg::Str(s),
        Value::Buf(b) => Arg::Buf(b),
        Value::Int(i) => Arg::Int(i as u64),
        Value::Uint(u) | Value::Ptr(u) => Arg::Int(u),
        v @ (Value::Stack(_) | Value::Sym(_) | Value::Time(_) | Value::Inet(_) | Value::Mac(_)) => {
            Arg::Str(text::value(&v).into_bytes())
        }
        Value::Tuple(_) | Value::Record(_) | Value::Array(_) => Arg::Int(0),
    }
}

/// Whether process `pid` still runs: it exists and is not a zombie
/// waiting for its parent.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesized command name, which may hold
    // spaces and parentheses itself.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}
