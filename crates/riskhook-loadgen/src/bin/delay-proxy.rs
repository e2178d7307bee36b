//! `delay-proxy`: a TCP proxy that delivers every chunk a fixed one-way delay after it read it,
//! to benchmark against a database that is a network hop away (issue 14) on a single machine.
//!
//! It owns only the byte forwarding: each accepted connection gets its own upstream connection
//! and, per direction, a reader thread that stamps each chunk with its deadline and a writer
//! thread that sleeps until that deadline and writes. Plain threads rather than tokio: tokio's
//! timer rounds to whole milliseconds, which would turn a 1 ms delay into 1-2 ms, while
//! `std::thread::sleep` overshoots by tens of microseconds. The expected scale (a pool of
//! 50-100 connections) is four threads each, which is cheap.
//!
//! ```text
//! delay-proxy --listen 127.0.0.1:6432 --upstream 127.0.0.1:5432 --delay 1ms
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

/// Forwards TCP connections to an upstream, delaying every chunk by a fixed one-way delay in
/// each direction (so a round trip gains twice the delay).
#[derive(Debug, Parser)]
#[command(name = "delay-proxy", version)]
struct Args {
    /// Address to accept connections on (port 0 picks a free port, printed on stderr).
    #[arg(long)]
    listen: String,
    /// Address every accepted connection is forwarded to.
    #[arg(long)]
    upstream: String,
    /// One-way delay added to each chunk, in each direction (e.g. 1ms, 500us).
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Duration,
}

/// Largest chunk read at once; each chunk is copied into a buffer of its own size, so small
/// protocol messages (the usual case) cost little memory while in flight.
const READ_BUF: usize = 64 * 1024;

/// Chunks in flight per direction before the reader blocks: backpressure, so a slow receiver
/// cannot make the proxy buffer without bound. 256 chunks per delay is far above what a
/// database protocol keeps in flight.
const IN_FLIGHT: usize = 256;

/// The threads only hold a read buffer (on the heap) and a few frames.
const STACK: usize = 128 * 1024;

enum Chunk {
    Data(Instant, Vec<u8>),
    /// The source sent FIN: pass the half-close on, delayed like the data before it.
    Eof(Instant),
    /// The source failed: close both connections.
    Abort,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let upstream: Vec<SocketAddr> = args
        .upstream
        .to_socket_addrs()
        .with_context(|| format!("resolving --upstream {}", args.upstream))?
        .collect();
    anyhow::ensure!(
        !upstream.is_empty(),
        "--upstream {} resolves to no address",
        args.upstream
    );
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("binding --listen {}", args.listen))?;
    eprintln!(
        "delay-proxy: listening on {} -> {}, {} each way",
        listener.local_addr()?,
        args.upstream,
        humantime::format_duration(args.delay)
    );
    serve(&listener, &upstream, args.delay);
    Ok(())
}

/// Accepts forever; a failed accept or connection is reported and never stops the others.
fn serve(listener: &TcpListener, upstream: &[SocketAddr], delay: Duration) {
    for client in listener.incoming() {
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                eprintln!("delay-proxy: accept: {err}");
                // EMFILE and the like would otherwise spin.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let upstream = upstream.to_vec();
        // The upstream connect can block, so it happens off the accept loop.
        let spawned = thread::Builder::new()
            .name("conn".into())
            .stack_size(STACK)
            .spawn(move || {
                if let Err(err) = connection(client, &upstream, delay) {
                    eprintln!("delay-proxy: connection: {err:#}");
                }
            });
        if let Err(err) = spawned {
            eprintln!("delay-proxy: spawning a connection thread: {err}");
        }
    }
}

fn connection(client: TcpStream, upstream: &[SocketAddr], delay: Duration) -> anyhow::Result<()> {
    let server = TcpStream::connect(upstream).context("connecting upstream")?;
    // Nagle would hold small writes back for an ACK, adding latency we do not mean to add.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let client = Arc::new(client);
    let server = Arc::new(server);
    let up = direction(&client, &server, delay);
    let down = direction(&server, &client, delay);
    if let Err(err) = up.and(down) {
        // Whatever started still finds the sockets shut down and ends.
        return Err(err).context("spawning forwarding threads");
    }
    Ok(())
}

/// Starts the reader and writer threads of one direction, `from` to `to`; if either cannot
/// start, both sockets are shut down so that whatever did start ends.
fn direction(from: &Arc<TcpStream>, to: &Arc<TcpStream>, delay: Duration) -> anyhow::Result<()> {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let (from_w, to_w) = (Arc::clone(from), Arc::clone(to));
    let from_r = Arc::clone(from);
    let started = thread::Builder::new()
        .name("write".into())
        .stack_size(STACK)
        .spawn(move || write_side(&rx, &from_w, &to_w))
        .and_then(|_| {
            thread::Builder::new()
                .name("read".into())
                .stack_size(STACK)
                .spawn(move || read_side(&tx, &from_r, delay))
        });
    if let Err(err) = started {
        close_both(from, to);
        return Err(err.into());
    }
    Ok(())
}

fn read_side(tx: &SyncSender<Chunk>, from: &TcpStream, delay: Duration) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let chunk = match (&*from).read(&mut buf) {
            Ok(0) => Chunk::Eof(Instant::now() + delay),
            Ok(n) => Chunk::Data(Instant::now() + delay, buf[..n].to_vec()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Chunk::Abort,
        };
        let last = !matches!(chunk, Chunk::Data(..));
        // A closed channel means the writer gave up and already shut both sockets down.
        if tx.send(chunk).is_err() || last {
            return;
        }
    }
}

fn write_side(rx: &Receiver<Chunk>, from: &TcpStream, to: &TcpStream) {
    // A closed channel without an Eof or Abort only happens if the reader died early: treat it
    // as an EOF.
    while let Ok(chunk) = rx.recv() {
        match chunk {
            Chunk::Data(deadline, bytes) => {
                sleep_until(deadline);
                if (&*to).write_all(&bytes).is_err() {
                    // The receiver is gone: the sender must learn it too, and the reader of
                    // this direction must stop, which the shutdown of `from` does.
                    close_both(from, to);
                    return;
                }
            }
            Chunk::Eof(deadline) => {
                sleep_until(deadline);
                // The other direction keeps running until its own EOF: a half-closed
                // connection may still carry an answer.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Chunk::Abort => {
                close_both(from, to);
                return;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        thread::sleep(deadline - now);
    }
}

/// Shuts both sockets down in both directions, which wakes every thread of the connection
/// blocked on them; errors only mean a socket is already closed.
fn close_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Echoes each connection until EOF, then closes it.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        addr
    }

    fn proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || serve(&listener, &[upstream], delay));
        addr
    }

    #[test]
    fn forwards_intact_after_the_delay_each_way_and_passes_eof_on() {
        let delay = Duration::from_millis(5);
        let addr = proxy(echo_server(), delay);
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_nodelay(true).unwrap();

        // Small round trips: each must take at least the two one-way delays.
        let mut answer = [0u8; 5];
        for round in 0..5u8 {
            let message = [round, b'p', b'i', b'n', b'g'];
            let started = Instant::now();
            conn.write_all(&message).unwrap();
            conn.read_exact(&mut answer).unwrap();
            let elapsed = started.elapsed();
            assert_eq!(answer, message);
            assert!(
                elapsed >= 2 * delay,
                "round trip {elapsed:?} < 2 x {delay:?}"
            );
        }

        // A bulk transfer spanning many chunks arrives whole and in order, and the half-close
        // reaches the echo server, whose close comes back as EOF.
        let bulk: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let mut conn = conn.try_clone().unwrap();
            let bulk = bulk.clone();
            thread::spawn(move || {
                conn.write_all(&bulk).unwrap();
                conn.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut received = Vec::new();
        conn.read_to_end(&mut received).unwrap();
        writer.join().unwrap();
        assert!(
            received == bulk,
            "bulk transfer corrupted ({} bytes back)",
            received.len()
        );
    }

    #[test]
    fn an_unreachable_upstream_closes_the_client() {
        // Bound but never accepting, then dropped: connections to it are refused.
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let addr = proxy(gone, Duration::from_millis(1));
        let mut conn = TcpStream::connect(addr).unwrap();
        let mut buf = Vec::new();
        // Either EOF or a reset: what matters is that the proxy neither hangs nor panics.
        let _ = conn.read_to_end(&mut buf);
        assert!(buf.is_empty());
    }
}
