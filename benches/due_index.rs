//! The parts of the due index's join path (DESIGN §5), each next to a reference in the same run:
//!
//! - `extract`: reading `/expiration_date` from a ~300 B JSON entity, against a plain
//!   `serde_json` parse of the whole value (what an extractor without lazy lookup would pay);
//! - `insert`: `DueIndex::upsert` of 1M entities spread over a year, against inserting the same
//!   `(due, id)` pairs into a `BTreeMap` (the textbook ordered index);
//! - `pop_due`: draining 1M entities due at one instant, against draining the `BTreeMap`;
//! - `fire_record`: building fire records for 1,000 due entities with and without a merge patch.
//!
//! How: inputs are built once outside the timed region; throughput is in elements (records or
//! entities), so the report reads as records/s.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kairos::temporal::config::TemporalConfig;
use kairos::temporal::due_index::{DueEntry, DueIndex, EntityId};
use kairos::temporal::extract::{FieldValue, extract};
use kairos::temporal::fire::{SourceRecord, fire_batch, fire_record};

const YEAR_MS: i64 = 365 * 24 * 3_600_000;
const T0: i64 = 1_800_000_000_000;

fn entity(i: u64, due_ms: i64) -> Vec<u8> {
    format!(
        r#"{{"id":"price-{i:08}","product":"sku-{p:06}","currency":"EUR","amount":{a}.{c:02},"channel":"web","region":"eu-west","tags":["seasonal","promo","clearance"],"note":"padding text to bring the entity to about three hundred bytes in total","valid_from":"2026-01-01T00:00:00Z","expiration_date":{due_ms}}}"#,
        p = i % 100_000,
        a = i % 1000,
        c = i % 100,
    )
    .into_bytes()
}

fn due_of(i: u64) -> i64 {
    T0 + i64::try_from(i.wrapping_mul(2_654_435_761) % 31_536_000_000).unwrap_or(0) % YEAR_MS
}

fn bench_extract(c: &mut Criterion) {
    let config = TemporalConfig::parse(Some("/expiration_date"), None, None, None)
        .unwrap()
        .unwrap();
    let values: Vec<Vec<u8>> = (0..1024).map(|i| entity(i, due_of(i))).collect();
    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("lazy_pointer", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for v in &values {
                extract(
                    &config.fields,
                    config.format,
                    Some(v),
                    std::iter::empty(),
                    &mut out,
                );
                assert!(matches!(out[0], FieldValue::Due(_)));
            }
        });
    });
    group.bench_function("reference_full_serde_json_parse", |b| {
        b.iter(|| {
            for v in &values {
                let doc: serde_json::Value = serde_json::from_slice(v).unwrap();
                black_box(doc.get("expiration_date"));
            }
        });
    });
    group.finish();
}

const ENTITIES: u64 = 1_000_000;

fn bench_insert(c: &mut Criterion) {
    let keys: Vec<(EntityId, i64)> = (0..ENTITIES)
        .map(|i| (EntityId::new(&i.to_be_bytes(), 0), due_of(i)))
        .collect();
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(ENTITIES));
    group.sample_size(10);
    group.bench_function("due_index_1M", |b| {
        b.iter(|| {
            let mut index = DueIndex::new();
            for (offset, &(id, due)) in keys.iter().enumerate() {
                let _ = index.upsert(id, due, i64::try_from(offset).unwrap());
            }
            black_box(index.pending())
        });
    });
    group.bench_function("reference_btreemap_1M", |b| {
        b.iter(|| {
            let mut map = BTreeMap::new();
            for (offset, &(id, due)) in keys.iter().enumerate() {
                let _ = map.insert((due, id.field(), offset), id);
            }
            black_box(map.len())
        });
    });
    group.finish();
}

fn bench_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("pop_due");
    group.throughput(Throughput::Elements(ENTITIES));
    group.sample_size(10);
    group.bench_function("due_index_1M_at_t0", |b| {
        b.iter_batched(
            || {
                let mut index = DueIndex::new();
                for i in 0..ENTITIES {
                    let _ = index.upsert(
                        EntityId::new(&i.to_be_bytes(), 0),
                        T0,
                        i64::try_from(i).unwrap(),
                    );
                }
                index
            },
            |mut index| {
                let mut out = Vec::with_capacity(4096);
                let mut total = 0;
                loop {
                    out.clear();
                    index.pop_due(T0, 4096, &mut out);
                    if out.is_empty() {
                        break;
                    }
                    for e in &out {
                        let _ = index.fired(e);
                    }
                    total += out.len();
                }
                assert_eq!(total as u64, ENTITIES);
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("reference_btreemap_1M_at_t0", |b| {
        b.iter_batched(
            || {
                (0..ENTITIES)
                    .map(|i| ((T0, i), i))
                    .collect::<BTreeMap<_, _>>()
            },
            |mut map| {
                while let Some(entry) = map.pop_first() {
                    black_box(entry);
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_fire(c: &mut Criterion) {
    let plain = TemporalConfig::parse(Some("/expiration_date"), None, None, None)
        .unwrap()
        .unwrap();
    let patched = TemporalConfig::parse(
        Some("/expiration_date"),
        None,
        Some(r#"{"/expiration_date":{"status":"inactive"}}"#),
        None,
    )
    .unwrap()
    .unwrap();
    let sources: Vec<(DueEntry, SourceRecord)> = (0..1000u64)
        .map(|i| {
            let key = format!("price-{i:08}").into_bytes();
            let entry = DueEntry::new(EntityId::new(&key, 0), T0, i64::try_from(i).unwrap());
            let source = SourceRecord {
                offset: entry.offset,
                key: Some(key),
                value: Some(entity(i, T0)),
                headers: vec![("trace".into(), Some(b"abc".to_vec()))],
            };
            (entry, source)
        })
        .collect();
    let mut group = c.benchmark_group("fire_record");
    group.throughput(Throughput::Elements(sources.len() as u64));
    group.measurement_time(Duration::from_secs(3));
    for (name, config) in [("no_patch", &plain), ("with_patch", &patched)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let fires = sources
                    .iter()
                    .map(|(e, s)| fire_record(config, e, s))
                    .collect();
                black_box(fire_batch(fires))
            });
        });
    }
    group.finish();
}

/// Index-ready time after a restart, from a snapshot of 8M entities spread over a year
/// (DESIGN target: ≤ 2 s), next to reading the same bytes without building anything.
fn bench_snapshot_restore(c: &mut Criterion) {
    const N: u64 = 8_000_000;
    let mut index = DueIndex::with_capacity(usize::try_from(N).unwrap());
    for i in 0..N {
        let _ = index.upsert(
            EntityId::new(&i.to_be_bytes(), 0),
            due_of(i),
            i64::try_from(i).unwrap(),
        );
    }
    let mut bytes = Vec::new();
    let _ = kairos::temporal::snapshot::write(&index, 1, &mut bytes).unwrap();
    drop(index);
    let mut group = c.benchmark_group("snapshot_restore");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10);
    group.bench_function("restore_8M", |b| {
        b.iter(|| {
            let (index, _) = kairos::temporal::snapshot::read(&mut bytes.as_slice()).unwrap();
            black_box(index.pending())
        });
    });
    group.bench_function("reference_copy_8M_snapshot_bytes", |b| {
        b.iter(|| black_box(bytes.clone()).len());
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_extract,
    bench_insert,
    bench_pop,
    bench_fire,
    bench_snapshot_restore
);
criterion_main!(benches);
