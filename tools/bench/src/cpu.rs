//! CPU time from /proc: of one process, and of the PostgreSQL backends serving one database
//! (their command line reads `postgres: <cluster>: <user> <database> <host> <state>`).

use std::time::Duration;

use anyhow::{Context, Result};

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
}

/// utime + stime of a process (all its threads), in clock ticks.
fn process_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_second())
}

pub fn process(pid: u32) -> Result<Duration> {
    process_ticks(pid).map(ticks_to_duration)
}

/// A snapshot of the CPU used so far by each backend of `database`.
pub struct Backends(Vec<(u32, u64)>);

impl Backends {
    pub fn sample(database: &str) -> Backends {
        let mut backends = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Backends(backends);
        };
        let needle = format!(" {database} ");
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.starts_with("postgres: ")
                && cmdline.contains(&needle)
                && let Ok(ticks) = process_ticks(pid)
            {
                backends.push((pid, ticks));
            }
        }
        Backends(backends)
    }

    /// CPU used by the backends between `earlier` and this snapshot; a backend that started
    /// in between counts in full, one that ended is lost.
    pub fn since(&self, earlier: &Backends) -> Duration {
        let ticks: u64 = self
            .0
            .iter()
            .map(|(pid, now)| {
                let before = earlier
                    .0
                    .iter()
                    .find(|(old, _)| old == pid)
                    .map_or(0, |(_, ticks)| *ticks);
                now.saturating_sub(before)
            })
            .sum();
        ticks_to_duration(ticks)
    }
}

/// The machine's CPU time so far in clock ticks, from the first line of /proc/stat: busy
/// (user, nice, system, irq, softirq) and idle (idle, iowait). Time the hypervisor stole is
/// neither: a share of busy time is of the time the machine had.
#[derive(Clone, Copy, Default)]
pub struct Machine {
    busy: u64,
    idle: u64,
}

impl Machine {
    pub fn sample() -> Machine {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let at = |index: usize| ticks.get(index).copied().unwrap_or(0);
        Machine {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
        }
    }

    /// The share of the machine's CPU time that was busy between `earlier` and this sample.
    pub fn busy_since(&self, earlier: &Machine) -> f64 {
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        busy / (busy + idle)
    }
}
