//! Independent clients from other ecosystems, run as scripts from `tests/clients/`. They need
//! their interpreter and packages (`tests/clients/requirements.txt`); when those are missing
//! the test says so and skips, and CI installs them so it runs there.

use std::process::Command;

use crate::support;

/// The Python interpreter: `$KAIROS_TEST_PYTHON` (set by `.ci/run` to its venv), else
/// `python3`.
fn python() -> String {
    std::env::var("KAIROS_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn has_module(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The interpreter when it can import `module`. Otherwise `None` (the test skips), except under
/// `.ci/run`, which sets KAIROS_TEST_PYTHON to a venv it installed the requirements into: there
/// a missing module is a broken setup, and skipping would hide it.
fn python_with(module: &str, test: &str) -> Option<String> {
    let python = python();
    if has_module(&python, module) {
        return Some(python);
    }
    assert!(
        std::env::var_os("KAIROS_TEST_PYTHON").is_none(),
        "KAIROS_TEST_PYTHON={python} cannot import {module}"
    );
    eprintln!(
        "SKIPPED {test}: `{python}` cannot import {module} \
         (pip install -r tests/clients/requirements.txt, or set KAIROS_TEST_PYTHON to a venv's python)"
    );
    None
}

/// Runs `tests/clients/<script> <bootstrap>` and asserts it succeeded and printed OK.
async fn run_script(python: String, script: &str, bootstrap: String) {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(path)
            .arg(&bootstrap)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_produce_fetch_admin() {
    let Some(python) = python_with("kafka", "kafka_python_produce_fetch_admin") else {
        return;
    };
    let broker = support::embedded().await;
    run_script(python, "kafka_python_smoke.py", broker.bootstrap_servers()).await;
    broker.shutdown().await.unwrap();
}

/// confluent-kafka (librdkafka's admin API): list groups with state and type filters, describe
/// classic and KIP-848 groups, list and alter committed offsets, delete groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_kafka_group_admin() {
    let Some(python) = python_with("confluent_kafka", "confluent_kafka_group_admin") else {
        return;
    };
    let broker = support::group_broker().await;
    run_script(python, "confluent_groups.py", broker.bootstrap_servers()).await;
    broker.shutdown().await.unwrap();
}

/// kafka-python's group admin API, including OffsetDelete (`delete_group_offsets`), which
/// confluent-kafka does not expose.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_group_admin_and_offset_delete() {
    let Some(python) = python_with("kafka", "kafka_python_group_admin_and_offset_delete") else {
        return;
    };
    let broker = support::group_broker().await;
    run_script(python, "kafka_python_groups.py", broker.bootstrap_servers()).await;
    broker.shutdown().await.unwrap();
}
