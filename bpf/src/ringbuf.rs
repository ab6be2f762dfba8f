//! Reading a BPF ring buffer from user space.
//!
//! Programs push records with `bpf_ringbuf_output`; [`RingBufReader`]
//! hands each one, in order, to a callback. Polling waits on the ring
//! buffer's epoll fd, so an idle tracer sleeps instead of spinning.

use std::time::Duration;

use libbpf_rs::{MapHandle, RingBuffer, RingBufferBuilder};

use crate::error::{Error, Result};

/// Reads records from one ring-buffer map.
pub struct RingBufReader<'cb> {
    inner: RingBuffer<'cb>,
}

impl std::fmt::Debug for RingBufReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBufReader").finish_non_exhaustive()
    }
}

impl<'cb> RingBufReader<'cb> {
    /// A reader of `map` (of type `RINGBUF`) calling `callback` with each
    /// record. A negative return stops the current poll with that error.
    pub fn new(map: &MapHandle, callback: impl FnMut(&[u8]) -> i32 + 'cb) -> Result<Self> {
        let mut builder = RingBufferBuilder::new();
        builder.add(map, callback).map_err(|e| {
            Error::sys(
                "setting up the ring buffer reader",
                std::io::Error::other(e.to_string()),
            )
        })?;
        let inner = builder.build().map_err(|e| {
            Error::sys(
                "mapping the ring buffer",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(Self { inner })
    }

    /// Waits up to `timeout` for records and handles all that are ready.
    /// Returns how many were handled. An interrupted wait counts as none.
    pub fn poll(&self, timeout: Duration) -> Result<usize> {
        let n = self.inner.poll_raw(timeout);
        if n == -libc::EINTR {
            return Ok(0);
        }
        if n < 0 {
            return Err(Error::sys(
                "polling the ring buffer",
                std::io::Error::from_raw_os_error(-n),
            ));
        }
        Ok(n as usize)
    }

    /// Handles every record already in the buffer, without waiting.
    pub fn drain(&self) -> Result<usize> {
        let n = self.inner.consume_raw();
        if n < 0 {
            return Err(Error::sys(
                "reading the ring buffer",
                std::io::Error::from_raw_os_error(-n),
            ));
        }
        Ok(n as usize)
    }
}
