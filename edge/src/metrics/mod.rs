//! One scrape of a server's `GET /metrics`, encoded by the maintained `prometheus-client`
//! crate in the Prometheus text exposition format (version 0.0.4).
//!
//! Each server keeps its figures where they are cheapest to update (atomics, a map under a
//! mutex, the crate's own [`Histogram`]) and, at each scrape, adds them to an [`Exposition`]
//! in the order they are to appear. The crate writes the `# HELP` and `# TYPE` lines, escapes
//! label values, accumulates histogram buckets and formats the numbers, so that the text is
//! what any Prometheus client library would write. Families are written in the order they
//! are added and their series in the order given, so a scrape reads the same way each time.
//!
//! [`parse`] reads such a text back, strictly, for the servers' tests.
//!
//! [`Histogram`]: prometheus_client::metrics::histogram::Histogram

mod parse;

pub use parse::{parse, Family as ParsedFamily, Sample};

use std::fmt::Debug;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the text [`Exposition::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A series' labels: `(name, value)` pairs, in the order they are written.
pub type Labels = Vec<(&'static str, String)>;

/// The metrics of one scrape, written in the order they were added.
#[derive(Debug, Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// A gauge without labels. `help` is written as given.
    pub fn gauge<N>(&mut self, name: &'static str, help: &'static str, value: N)
    where
        N: EncodeGaugeValue + Debug + Send + Sync + 'static,
    {
        self.family(name, help, vec![(Vec::new(), ConstGauge::new(value))]);
    }

    /// A counter without labels; `name` ends in `_total`, as the format wants of a counter.
    pub fn counter<N>(&mut self, name: &'static str, help: &'static str, value: N)
    where
        N: EncodeCounterValue + Debug + Send + Sync + 'static,
    {
        self.counters(name, help, vec![(Vec::new(), value)]);
    }

    /// A labelled counter family; `name` ends in `_total`.
    pub fn counters<N>(&mut self, name: &'static str, help: &'static str, series: Vec<(Labels, N)>)
    where
        N: EncodeCounterValue + Debug + Send + Sync + 'static,
    {
        // The crate names a counter's samples `<family>_total` itself.
        let family = name.strip_suffix("_total").unwrap_or(name);
        let series = series
            .into_iter()
            .map(|(labels, value)| (labels, ConstCounter::new(value)))
            .collect();
        self.family(family, help, series);
    }

    /// A family of any one metric type (the crate's `Histogram`, a constant gauge...), one
    /// series per label set; written with its `# HELP` and `# TYPE` lines even when empty.
    pub fn family<M>(&mut self, name: &'static str, help: &'static str, series: Vec<(Labels, M)>)
    where
        M: EncodeMetric + TypedMetric + Debug + Send + Sync + 'static,
    {
        self.registry
            .register_collector(Box::new(Family { name, help, series }));
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a `String` cannot fail, and every name and label is valid text: an
        // error here would be the crate's, and the scrape then shows what was written so far.
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed");
        }
        text
    }
}

/// One family's series, as the crate's registry asks for them at encoding.
#[derive(Debug)]
struct Family<M> {
    name: &'static str,
    help: &'static str,
    series: Vec<(Labels, M)>,
}

impl<M> Collector for Family<M>
where
    M: EncodeMetric + TypedMetric + Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(self.name, self.help, None, M::TYPE)?;
        for (labels, metric) in &self.series {
            metric.encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn writes_families_in_order_with_their_help_type_and_escaped_labels() {
        let mut exposition = Exposition::new();
        exposition.gauge("demo_ready", "Whether it is ready (1) or not (0).", 1_i64);
        exposition.counters(
            "demo_requests_total",
            "Requests, by origin.",
            vec![(vec![("origin", "a\"b\\c\nd".to_string())], 2_u64)],
        );
        exposition.counters::<u64>("demo_empty_total", "None yet.", Vec::new());
        let histogram = Histogram::new([0.01, 1.0]);
        histogram.observe(0.005);
        histogram.observe(0.5);
        exposition.family(
            "demo_seconds",
            "Latency.",
            vec![(vec![("route", "/add".to_string())], histogram)],
        );
        assert_eq!(
            exposition.encode(),
            "# HELP demo_ready Whether it is ready (1) or not (0).\n\
             # TYPE demo_ready gauge\n\
             demo_ready 1\n\
             # HELP demo_requests_total Requests, by origin.\n\
             # TYPE demo_requests_total counter\n\
             demo_requests_total{origin=\"a\\\"b\\\\c\\nd\"} 2\n\
             # HELP demo_empty_total None yet.\n\
             # TYPE demo_empty_total counter\n\
             # HELP demo_seconds Latency.\n\
             # TYPE demo_seconds histogram\n\
             demo_seconds_bucket{route=\"/add\",le=\"0.01\"} 1\n\
             demo_seconds_bucket{route=\"/add\",le=\"1\"} 2\n\
             demo_seconds_bucket{route=\"/add\",le=\"+Inf\"} 2\n\
             demo_seconds_sum{route=\"/add\"} 0.505\n\
             demo_seconds_count{route=\"/add\"} 2\n"
        );
    }
}
