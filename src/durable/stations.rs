//! Durable writers registered at start: with the library in
//! `shared_preload_libraries`, `mcp_oauth.durable_workers` background
//! workers ("stations") wait for jobs, so a durable write needs no dynamic
//! worker slot, and works when `max_worker_processes` is exhausted.
//!
//! Each station is a slot of atomics in shared memory: the pid and latch of
//! its worker, the job it holds (the handle of the job's segment; 0 when
//! free) and the database and role it serves. A caller claims a free
//! station by compare-and-swap on the job and wakes it; the worker runs the
//! job as a dynamic worker would (`worker::run_job`) and frees the station.
//! A worker process connects to one database, as one role, for its life:
//! it serves the first database that gives it a job, and jobs of other
//! databases go to other stations (or to dynamic workers). A worker that
//! ends (an ERROR in a job, say) is restarted by the postmaster after a
//! second; its caller sees it gone.

use super::worker::run_job;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys, PGRXSharedMemory, PgLwLock};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::gucs::MAX_DURABLE_WORKERS as MAX_STATIONS;

#[derive(Default)]
#[repr(C)]
struct Station {
    /// Its worker's pid; 0 while none runs.
    pid: AtomicI32,
    /// Its worker's latch (in the worker's PGPROC, in shared memory).
    latch: AtomicU64,
    /// The segment of the job it holds; 0 when free.
    job: AtomicU32,
    /// The database and role its worker serves; 0 until its first job.
    database: AtomicU32,
    owner: AtomicU32,
}

#[derive(Default)]
#[repr(C)]
pub struct Stations([Station; MAX_STATIONS]);

// SAFETY: plain atomics, no pointers: the same in every process.
unsafe impl PGRXSharedMemory for Stations {}

// SAFETY: the name is ours alone. Only ever taken shared: the stations are
// atomics, the lock is how pgrx hands out shared memory.
static STATIONS: PgLwLock<Stations> = unsafe { PgLwLock::new(c"mcp_oauth_stations") };

/// Set in the postmaster while preloading; every process inherits it.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Asks for the stations' shared memory and registers `count` workers;
/// only while preloading.
pub fn init(count: usize) {
    pg_shmem_init!(STATIONS);
    REGISTERED.store(true, Ordering::Relaxed);
    for index in 0..count.min(MAX_STATIONS) {
        BackgroundWorkerBuilder::new(&format!("mcp_oauth durable writer {index}"))
            .set_type("mcp_oauth durable writer")
            .set_library("mcp_oauth")
            .set_function("mcp_oauth_station_main")
            .set_argument(Some(pg_sys::Datum::from(index)))
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
}

fn with_station<R>(index: usize, f: impl FnOnce(&Station) -> R) -> R {
    f(&STATIONS.share().0[index])
}

/// A station holding a caller's job.
pub struct Claim {
    index: usize,
    pid: i32,
    job: u32,
    latch: u64,
}

/// Claims a free station for the job in segment `job`, of `database`, to be
/// run as `owner`: one serving them already, else one serving none yet.
pub fn claim(database: u32, owner: u32, job: u32) -> Option<Claim> {
    if !REGISTERED.load(Ordering::Relaxed) {
        return None;
    }
    let stations = STATIONS.share();
    let serves = |s: &Station| s.database.load(Ordering::Acquire) == database && s.owner.load(Ordering::Acquire) == owner;
    let unbound = |s: &Station| s.database.load(Ordering::Acquire) == 0;
    for wanted in [&serves as &dyn Fn(&Station) -> bool, &unbound] {
        for (index, station) in stations.0.iter().enumerate() {
            let pid = station.pid.load(Ordering::Acquire);
            if pid == 0 || !wanted(station) || station.job.compare_exchange(0, job, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            // The station is ours: only the holder of a job binds it.
            if unbound(station) {
                station.owner.store(owner, Ordering::Release);
                station.database.store(database, Ordering::Release);
            } else if !serves(station) {
                station.job.store(0, Ordering::Release);
                continue;
            }
            return Some(Claim { index, pid, job, latch: station.latch.load(Ordering::Acquire) });
        }
    }
    None
}

impl Claim {
    /// Tells the station's worker it has a job.
    pub fn wake(&self) {
        // SAFETY: the worker's PGPROC latch, in shared memory.
        unsafe { pg_sys::SetLatch(self.latch as *mut pg_sys::Latch) };
    }

    /// The station is done with the job, or its worker is gone.
    pub fn released(&self) -> bool {
        let (pid, job) = with_station(self.index, |s| (s.pid.load(Ordering::Acquire), s.job.load(Ordering::Acquire)));
        // SAFETY: signal 0 only asks whether the process exists.
        pid != self.pid || job != self.job || unsafe { libc::kill(self.pid, 0) } != 0
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn leave_station(_code: i32, arg: pg_sys::Datum) {
    with_station(arg.value(), |s| {
        s.pid.store(0, Ordering::Release);
        s.job.store(0, Ordering::Release);
    });
}

/// A station's worker: waits on its latch for a job, runs it, frees the
/// station, until it is told to stop.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn mcp_oauth_station_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM | SignalWakeFlags::SIGHUP);
    let index = arg.value();
    if index >= MAX_STATIONS {
        return;
    }
    // SAFETY: MyProc is this process's PGPROC; the callback is of the
    // signature PostgreSQL expects.
    let latch = unsafe {
        pg_sys::before_shmem_exit(Some(leave_station), pg_sys::Datum::from(index));
        std::ptr::addr_of_mut!((*pg_sys::MyProc).procLatch) as u64
    };
    with_station(index, |s| {
        // A new process: connected nowhere yet, holding no job.
        s.job.store(0, Ordering::Release);
        s.database.store(0, Ordering::Release);
        s.owner.store(0, Ordering::Release);
        s.latch.store(latch, Ordering::Release);
        // SAFETY: a plain read of this process's pid.
        s.pid.store(unsafe { pg_sys::MyProcPid }, Ordering::Release);
    });
    loop {
        if BackgroundWorker::sighup_received() {
            // The settings a job reads (the encryption key, its file) as
            // they are now.
            // SAFETY: the standard reload, between jobs, outside a transaction.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let job = with_station(index, |s| s.job.load(Ordering::Acquire));
        if job != 0 {
            run_job(job);
            with_station(index, |s| s.job.store(0, Ordering::Release));
            continue;
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(60))) {
            break;
        }
    }
    // Told to stop. Exit code 1, not 0: a worker that exits with 0 is
    // unregistered, so one stopped by pg_terminate_backend would never come
    // back (at shutdown the postmaster restarts nothing either way).
    // SAFETY: the standard way out of a background worker.
    unsafe { pg_sys::proc_exit(1) };
}
