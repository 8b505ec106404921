//! The audit-event path of cairn-spec, per event: a submitted event parsed as strict JSON and
//! validated, then made into its leaf (payload canonicalized and hashed, the event
//! canonicalized per RFC 8785), and a leaf read back as an auditor reads it. The log server
//! does the first two for every `POST /v1/events`. The same for schema 2 leaves (every
//! personal field canonicalized and committed with HMAC-SHA-256; the leaf read back; a whole
//! event's openings verified).

use cairn_spec::event::{EventId, EventInput, EventLeaf, EventLeafV2, EventSalts};
use cairn_spec::jcs;
use cairn_spec::time::Instant;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// The event cairn-load sends (`cairn-load events`): ASCII names, a small payload and context.
const EVENT: &str = r#"{"event_id":"0b6f9a52-3c1e-4f7a-9d2b-5e8c1a7f4d30","timestamp":"2026-12-02T10:15:30.123Z","actor":{"id":"user-4711","type":"user","display":"Ada"},"action":"invoice.approve","resource":{"type":"invoice","id":"INV-2026-000417"},"outcome":"success","payload":{"amount":1250.5,"currency":"EUR","lines":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"approved after the second review"},"context":{"ip":"192.0.2.7","session":"s-93f1","request_id":"r-0c4e"},"schema_version":1}"#;

/// The same shape with non-ASCII names and text, which take RFC 8785's UTF-16 ordering path.
const EVENT_UNICODE: &str = r#"{"event_id":"0b6f9a52-3c1e-4f7a-9d2b-5e8c1a7f4d31","timestamp":"2026-12-02T10:15:30.123Z","actor":{"id":"benutzer-müller","type":"user","anzeige":"Jürgen Müller"},"action":"rechnung.freigeben","resource":{"type":"invoice","id":"RE-2026-000417"},"outcome":"success","payload":{"betrag":1250.5,"währung":"EUR","€":"ja","דּ":1,"😀":2,"bemerkung":"nach der zweiten Prüfung freigegeben"},"context":{"ip":"192.0.2.7"},"schema_version":1}"#;

fn bench_event(criterion: &mut Criterion) {
    let received_at = Instant::from_unix(1_764_670_530, 250_000_000);
    let generated = EventId::parse("7d0c1f3e-2a4b-4c5d-8e6f-9a0b1c2d3e4f").expect("UUID");
    let mut group = criterion.benchmark_group("event");
    group.throughput(Throughput::Elements(1));
    for (name, event) in [("ascii", EVENT), ("unicode", EVENT_UNICODE)] {
        let leaf = EventInput::parse(event.as_bytes())
            .expect("valid event")
            .into_leaf(generated.clone(), received_at, "producer-a")
            .expect("a leaf")
            .0
            .leaf;
        group.bench_function(format!("parse_{name}"), |bencher| {
            bencher.iter(|| EventInput::parse(black_box(event.as_bytes())).expect("valid"))
        });
        group.bench_function(format!("parse_and_leaf_{name}"), |bencher| {
            bencher.iter(|| {
                EventInput::parse(black_box(event.as_bytes()))
                    .expect("valid")
                    .into_leaf(generated.clone(), received_at, "producer-a")
                    .expect("a leaf")
            })
        });
        let parsed = jcs::parse(event.as_bytes(), cairn_spec::event::event_limits()).expect("JSON");
        group.bench_function(format!("canonicalize_{name}"), |bencher| {
            bencher.iter(|| jcs::canonicalize(black_box(&parsed)))
        });
        group.bench_function(format!("read_leaf_{name}"), |bencher| {
            bencher.iter(|| EventLeaf::parse(black_box(&leaf)).expect("a leaf"))
        });
        let salts = EventSalts::from_random([[1; 32], [2; 32], [3; 32], [4; 32]]);
        group.bench_function(format!("parse_and_leaf_v2_{name}"), |bencher| {
            bencher.iter(|| {
                EventInput::parse(black_box(event.as_bytes()))
                    .expect("valid")
                    .into_leaf_v2(generated.clone(), received_at, "producer-a", &salts)
                    .expect("a leaf")
            })
        });
        let (leaf_v2, openings) = EventInput::parse(event.as_bytes())
            .expect("valid event")
            .into_leaf_v2(generated.clone(), received_at, "producer-a", &salts)
            .expect("a leaf");
        group.bench_function(format!("read_leaf_v2_{name}"), |bencher| {
            bencher.iter(|| EventLeafV2::parse(black_box(&leaf_v2.leaf)).expect("a leaf"))
        });
        let disclosure = openings.disclose_all();
        group.bench_function(format!("verify_openings_v2_{name}"), |bencher| {
            bencher.iter(|| {
                leaf_v2
                    .verify_disclosure(black_box(&disclosure))
                    .expect("opens")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_event);
criterion_main!(benches);
