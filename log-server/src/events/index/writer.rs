//! The background writer: frozen tables written out as runs, and runs merged like a binary
//! counter.

use super::*;

#[derive(Default)]
pub(super) struct WriterState {
    pub(super) stop: bool,
    pub(super) failed: Option<String>,
}

pub(super) fn remove(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "could not remove an index file");
    }
}

pub(super) fn write_loop(shared: &Shared) {
    let mut state = shared.signal.lock();
    loop {
        if state.failed.is_some() {
            return;
        }
        let next = shared.tables.read().frozen.first().cloned();
        let Some(frozen) = next else {
            if state.stop {
                return;
            }
            shared.changed.wait(&mut state);
            continue;
        };
        drop(state);
        let result = write_frozen(shared, &frozen).and_then(|()| merge_runs(shared));
        state = shared.signal.lock();
        if let Err(error) = result {
            tracing::error!(%error, "writing the events index failed; it is rebuilt from the log at the next start");
            state.failed = Some(error.to_string());
        }
        shared.changed.notify_all();
    }
}

pub(super) fn write_frozen(shared: &Shared, frozen: &Frozen) -> Result<(), EventStoreError> {
    let (records, start) = {
        let table = frozen.table.read();
        let mut records = Records::with_events(table.events.len());
        for summary in table.events.range(table.start, frozen.end) {
            records.add_event(summary);
        }
        (records, table.start)
    };
    let mut writer = RunWriter::create(&shared.dir, start, frozen.end)?;
    records.write_sorted(&mut writer)?;
    let run = Arc::new(writer.finish(&shared.hasher, shared.seed)?);
    let mut tables = shared.tables.write();
    tables.frozen.remove(0);
    tables.runs.push(run);
    Ok(())
}

/// Merges the two newest runs while the older is no larger than the newer, or while there are
/// too many: a binary counter of run sizes.
pub(super) fn merge_runs(shared: &Shared) -> Result<(), EventStoreError> {
    loop {
        let runs = shared.tables.read().runs.clone();
        let count = runs.len();
        if count < 2
            || (runs[count - 2].records > runs[count - 1].records
                && count <= shared.config.max_runs)
        {
            return Ok(());
        }
        let inputs = &runs[count - 2..];
        let mut writer = RunWriter::create(&shared.dir, inputs[0].start, inputs[1].end)?;
        let mut cursors = inputs
            .iter()
            .map(|run| Cursor::seek(run, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        loop {
            let mut best: Option<usize> = None;
            for (number, cursor) in cursors.iter().enumerate() {
                if let Some((key, _)) = cursor.get() {
                    let better = match best {
                        None => true,
                        Some(b) => cursors[b].get().is_some_and(|(other, _)| key < other),
                    };
                    if better {
                        best = Some(number);
                    }
                }
            }
            let Some(best) = best else { break };
            let (key, value) = cursors[best].get().expect("chosen because it has a record");
            writer.push(key, value)?;
            cursors[best].advance()?;
        }
        drop(cursors);
        let merged = Arc::new(writer.finish(&shared.hasher, shared.seed)?);
        {
            let mut tables = shared.tables.write();
            let count = tables.runs.len();
            tables.runs.truncate(count - 2);
            tables.runs.push(merged);
        }
        for run in inputs {
            remove(&run.path);
        }
    }
}
