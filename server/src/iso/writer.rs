//! One ISO 8583 connection: the writer side. Builds each response as its answer arrives,
//! holds it in `sync` mode until its journal events are durable, and writes whatever is
//! ready in one go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cardcore_authz::wire::{respond, respond_format_error, respond_network_management};
use cardcore_authz::Answer;
use cardcore_core::iso8583::{parse, MessageBuilder, Mti, ResponseError};
use cardcore_ledger::journal::Seq;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};

use super::connection::{Completion, Reply, Ticket};
use crate::metrics::Metrics;
use crate::service::DurableState;
use crate::Service;

/// Room for a batch of responses; the buffer grows past it only while many are ready at
/// once, and never beyond what the in-flight bound allows.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Writes answers until the reader is done and every in-flight answer is out.
pub(crate) async fn run(
    wr: OwnedWriteHalf,
    rx: mpsc::Receiver<Completion>,
    service: Arc<Service>,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut writer = Writer {
        wr,
        rx,
        durable: service.subscribe_durable(),
        gate: service.answers_wait_for_durability(),
        builder: MessageBuilder::new(Mti::AuthorizationResponse),
        out: BytesMut::with_capacity(WRITE_BUFFER_BYTES),
        held: Vec::new(),
        written: Vec::new(),
        metrics: Arc::clone(service.metrics()),
        write_timeout: service.config().iso.idle_timeout(),
        peer,
    };
    drop(service);
    writer.run().await
}

/// An answer waiting for its events to be durable.
struct Held {
    completion: Completion,
    answer: Answer,
    seq: Seq,
    ready_at: Instant,
}

struct Writer {
    wr: OwnedWriteHalf,
    rx: mpsc::Receiver<Completion>,
    durable: watch::Receiver<DurableState>,
    /// `sync` mode: answers wait for durability.
    gate: bool,
    builder: MessageBuilder,
    out: BytesMut,
    held: Vec<Held>,
    /// Tickets of the responses in `out`: released once those bytes are written.
    written: Vec<Ticket>,
    metrics: Arc<Metrics>,
    write_timeout: Duration,
    peer: SocketAddr,
}

impl Writer {
    async fn run(&mut self) -> std::io::Result<()> {
        let mut reader_done = false;
        while !(reader_done && self.held.is_empty()) {
            tokio::select! {
                completion = self.rx.recv(), if !reader_done => match completion {
                    Some(completion) => self.accept(completion),
                    None => reader_done = true,
                },
                changed = self.durable.changed(), if !self.held.is_empty() => {
                    // The sender lives in the service; it is gone only at teardown.
                    let gone = changed.is_err();
                    self.release(gone);
                }
            }
            // Everything else already waiting goes out in the same write.
            while let Ok(completion) = self.rx.try_recv() {
                self.accept(completion);
            }
            self.flush().await?;
        }
        self.wr.shutdown().await
    }

    /// Writes the output; a peer that does not read for the idle timeout loses the
    /// connection, so it cannot hold a connection slot and its in-flight slots forever.
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            tokio::time::timeout(self.write_timeout, self.wr.write_all(&self.out))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "peer not reading")
                })??;
            self.out.clear();
        }
        self.written.clear();
        Ok(())
    }

    fn accept(&mut self, completion: Completion) {
        match &completion.reply {
            Reply::Engine(Ok(outcome)) => {
                let ready_at = Instant::now();
                self.metrics
                    .record_decision_latency(ready_at - completion.started);
                let (answer, seq) = (outcome.answer, outcome.seq);
                if self.gate && seq > 0 && !self.is_durable(completion.generation, seq) {
                    self.held.push(Held {
                        completion,
                        answer,
                        seq,
                        ready_at,
                    });
                } else {
                    self.write_answer(completion, &answer);
                }
            }
            Reply::Engine(Err(error)) => {
                self.metrics.engine_error();
                tracing::warn!(peer = %self.peer, %error, "the engine could not answer: 96");
                self.write_system_error(completion);
            }
            Reply::NetworkManagement | Reply::FormatError | Reply::Salvaged(_) => {
                self.metrics
                    .record_decision_latency(completion.started.elapsed());
                self.write_direct(completion);
            }
        }
    }

    fn is_durable(&self, generation: u64, seq: Seq) -> bool {
        let state = *self.durable.borrow();
        // A newer generation means a sandbox reset discarded this answer's state on purpose.
        state.generation > generation || (state.generation == generation && state.seq >= seq)
    }

    /// Writes every held answer that is now durable; with `failed`, answers `96` to those
    /// that never will be.
    fn release(&mut self, watch_gone: bool) {
        let state = *self.durable.borrow_and_update();
        for held in std::mem::take(&mut self.held) {
            let durable = state.generation > held.completion.generation
                || (state.generation == held.completion.generation && state.seq >= held.seq);
            let failed =
                watch_gone || (state.failed && state.generation == held.completion.generation);
            if durable {
                self.metrics.record_durability_wait(held.ready_at.elapsed());
                self.write_answer(held.completion, &held.answer);
            } else if failed {
                self.metrics.engine_error();
                tracing::error!(peer = %self.peer, "journal failed before the answer was durable: 96");
                self.write_system_error(held.completion);
            } else {
                self.held.push(held);
            }
        }
    }

    fn write_answer(&mut self, completion: Completion, answer: &Answer) {
        self.build_and_write(completion, |msg, b| respond(msg, answer, b));
    }

    fn write_system_error(&mut self, completion: Completion) {
        self.build_and_write(completion, |msg, b| {
            b.reset_as_response_to(msg)?;
            let _ = b.set_response_code(b"96");
            Ok(())
        });
    }

    fn write_direct(&mut self, completion: Completion) {
        if let Reply::Salvaged(salvaged) = &completion.reply {
            let (built, mti) = (self.builder.reset_as_format_error(salvaged), salvaged.mti);
            self.finish(completion, mti, built);
            return;
        }
        let network = matches!(completion.reply, Reply::NetworkManagement);
        self.build_and_write(completion, |msg, b| {
            if network {
                respond_network_management(msg, b)
            } else {
                respond_format_error(msg, b)
            }
        });
    }

    /// Parses the request again (it parsed once already), builds the response with `build`
    /// and appends it to the output.
    fn build_and_write(
        &mut self,
        completion: Completion,
        build: impl FnOnce(
            &cardcore_core::iso8583::Message<'_>,
            &mut MessageBuilder,
        ) -> Result<(), ResponseError>,
    ) {
        let frame = completion.frame.clone();
        let (mti, built) = match parse(&frame) {
            Ok(msg) => (Some(msg.mti()), build(&msg, &mut self.builder)),
            Err(_) => (None, Err(ResponseError::MtiUnreadable)),
        };
        self.finish(completion, mti, built);
    }

    fn finish(
        &mut self,
        completion: Completion,
        request: Option<Mti>,
        built: Result<(), ResponseError>,
    ) {
        match (request, built) {
            (Some(request), Ok(())) => {
                self.builder.pack_frame_into(&mut self.out);
                let code = self
                    .builder
                    .get(39)
                    .and_then(|c| <[u8; 2]>::try_from(c).ok())
                    .unwrap_or(*b"??");
                self.metrics.record_message(request, code);
                tracing::trace!(peer = %self.peer, mti = %request, code = %String::from_utf8_lossy(&code), "answered");
            }
            (_, result) => {
                // Every path here was checked to have a response; reaching this is a bug.
                self.metrics.unanswerable();
                tracing::error!(peer = %self.peer, ?result, "no response could be built");
            }
        }
        self.written.push(completion.ticket);
    }
}
