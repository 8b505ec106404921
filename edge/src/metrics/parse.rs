//! Reads a text exposition (format 0.0.4) back as a scraper does, and refuses what a strict one
//! would: a sample outside its family, a family without its `# HELP` and `# TYPE` lines, a bad
//! name, label or value, a histogram whose buckets do not add up. The servers' tests read their
//! `GET /metrics` through it, so that the text stays what Prometheus expects of it.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family of an exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The family's name, as its `# TYPE` line gives it.
    pub name: String,
    /// Its help text, unescaped.
    pub help: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    /// Its samples, in order.
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's name (a histogram's end in `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Its labels, unescaped, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// The families of `text`, or why a strict scraper would refuse it (with the line's number).
pub fn parse(text: &str) -> Result<Vec<Family>, String> {
    let mut families: Vec<Family> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let at = |why: String| format!("line {}: {why}: {line:?}", index + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            check_name(name).map_err(at)?;
            if !seen.insert(name.to_string()) {
                return Err(at(format!("family {name} appears twice")));
            }
            let Some((_, type_line)) = lines.next() else {
                return Err(at("a # HELP line without its # TYPE line".into()));
            };
            let kind = type_line
                .strip_prefix(&format!("# TYPE {name} "))
                .ok_or_else(|| at(format!("the next line is not # TYPE {name}")))?;
            if !matches!(kind, "counter" | "gauge" | "histogram") {
                return Err(at(format!("unknown type {kind}")));
            }
            families.push(Family {
                name: name.to_string(),
                help: unescape(help, false).map_err(at)?,
                kind: kind.to_string(),
                samples: Vec::new(),
            });
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("a comment or blank line outside a family's head".into()));
        } else {
            let sample = parse_sample(line).map_err(at)?;
            let family = families
                .last_mut()
                .ok_or_else(|| at("a sample before any family".into()))?;
            if !belongs(&sample.name, family) {
                return Err(at(format!(
                    "{} is not of family {}",
                    sample.name, family.name
                )));
            }
            family.samples.push(sample);
        }
    }
    for family in families.iter().filter(|family| family.kind == "histogram") {
        check_histogram(family)?;
    }
    Ok(families)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a metric name"))
    }
}

fn belongs(sample: &str, family: &Family) -> bool {
    match family.kind.as_str() {
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(family.name.as_str())),
        // The text format names a counter's family and its samples alike, `<name>_total`.
        "counter" => sample == family.name && family.name.ends_with("_total"),
        _ => sample == family.name,
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample without a value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = inside;
        while !rest.starts_with('}') {
            let (key, after) = rest
                .split_once("=\"")
                .ok_or_else(|| "a label without =\"".to_string())?;
            check_name(key)?;
            let (value, after) = quoted(after)?;
            labels.push((key.to_string(), value));
            rest = after.strip_prefix(',').unwrap_or(after);
        }
        rest = &rest[1..];
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_string())?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|error| format!("the value {other:?}: {error}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped, and what follows the quote.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => return Ok((unescape(&text[..index], true)?, &text[index + 1..])),
            _ => escaped = false,
        }
    }
    Err("a label value without its closing quote".into())
}

/// Undoes the format's escapes: `\\` and `\n`, and `\"` in label values.
fn unescape(text: &str, quote: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => return Err(format!("a bad escape \\{other:?} in {text:?}")),
        }
    }
    Ok(out)
}

/// What one label set of a histogram has: its buckets (bound, count), its `_count`, and
/// whether it has a `_sum`.
type HistogramSeries = (Vec<(f64, f64)>, Option<f64>, bool);

/// Per label set: `le` bounds rising to `+Inf`, counts not falling, `+Inf` equal to `_count`,
/// and a `_sum`.
fn check_histogram(family: &Family) -> Result<(), String> {
    let mut series: BTreeMap<Vec<(String, String)>, HistogramSeries> = BTreeMap::new();
    for sample in &family.samples {
        let mut labels = sample.labels.clone();
        let le = labels
            .iter()
            .position(|(key, _)| key == "le")
            .map(|at| labels.remove(at).1);
        let entry = series.entry(labels).or_default();
        match (sample.name.strip_prefix(&family.name), le) {
            (Some("_bucket"), Some(le)) => {
                let bound = match le.as_str() {
                    "+Inf" => f64::INFINITY,
                    other => other
                        .parse()
                        .map_err(|_| format!("{}: the bound {other:?}", family.name))?,
                };
                entry.0.push((bound, sample.value));
            }
            (Some("_count"), None) => entry.1 = Some(sample.value),
            (Some("_sum"), None) => entry.2 = true,
            _ => return Err(format!("{}: a bad sample {sample:?}", family.name)),
        }
    }
    for (labels, (buckets, count, has_sum)) in series {
        let rising = buckets
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1);
        let last = buckets.last().copied();
        let ok = rising
            && has_sum
            && last.is_some_and(|(bound, total)| bound == f64::INFINITY && Some(total) == count);
        if !ok {
            return Err(format!(
                "{} {labels:?}: the buckets do not add up",
                family.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_good_exposition_and_refuses_bad_ones() {
        let good = "# HELP a_total Things, by \\\\ kind.\n# TYPE a_total counter\n\
                    a_total{kind=\"x\\\"y\"} 2\n\
                    # HELP h Latency.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n\
                    h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
        let families = parse(good).expect("a good exposition");
        assert_eq!(families[0].help, "Things, by \\ kind.");
        assert_eq!(families[0].samples[0].labels[0].1, "x\"y");
        assert_eq!(families[1].kind, "histogram");
        for bad in [
            "a_total 1\n",
            "# HELP a_total A.\na_total 1\n",
            "# HELP a A.\n# TYPE a counter\na 1\n",
            "# HELP a A.\n# TYPE a gauge\nb 1\n",
            "# HELP a A.\n# TYPE a gauge\na{k=\"v} 1\n",
            "# HELP a A.\n# TYPE a gauge\na one\n",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} is accepted");
        }
    }
}
