//! Group commit for the audit log. Channels answer many people at once; each
//! answer's event must be on disk before the reply goes out, and an fsync per
//! event would cap the bot at the disk's sync rate. One writer thread commits
//! whatever events are waiting in a single transaction (one fsync) and then
//! releases every caller in that group.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};

use super::Store;
use super::audit::NewEvent;

/// Most events committed in one transaction.
const MAX_GROUP: usize = 512;

type Request = (NewEvent, Sender<Result<i64, String>>);

pub struct AuditWriter {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    pub fn spawn(store: Arc<Store>) -> AuditWriter {
        let (requests, incoming) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_groups(&store, &incoming))
            .expect("starting the audit writer thread");
        AuditWriter {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    /// Appends one event; returns its id once it is on disk.
    pub fn append(&self, event: NewEvent) -> Result<i64> {
        let (done, wait) = mpsc::channel();
        self.requests
            .as_ref()
            .expect("writer is running until dropped")
            .send((event, done))
            .map_err(|_| anyhow!("the audit writer has stopped"))?;
        wait.recv()
            .map_err(|_| anyhow!("the audit writer stopped before writing the event"))?
            .map_err(|e| anyhow!("writing the audit event: {e}"))
    }
}

fn write_groups(store: &Store, incoming: &Receiver<Request>) {
    while let Ok(first) = incoming.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match incoming.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (events, waiting): (Vec<NewEvent>, Vec<_>) = group.into_iter().unzip();
        match store.append(&events) {
            Ok(ids) => {
                for (id, done) in ids.into_iter().zip(waiting) {
                    let _ = done.send(Ok(id));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for done in waiting {
                    let _ = done.send(Err(message.clone()));
                }
            }
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // Closing the channel ends the loop once pending events are written.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Kind;

    #[test]
    fn concurrent_appends_are_all_written_once_and_chained() {
        let store = Arc::new(Store::in_memory().unwrap());
        let writer = Arc::new(AuditWriter::spawn(store.clone()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            writer
                                .append(NewEvent {
                                    question: Some(format!("t{t} q{i}")),
                                    ..NewEvent::new(Kind::Answered, serde_json::json!({}))
                                })
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<i64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        ids.sort();
        assert_eq!(ids, (1..=400).collect::<Vec<_>>());
        let v = store.verify().unwrap();
        assert_eq!(v.events, 400);
        assert!(v.broken.is_none());
    }
}
