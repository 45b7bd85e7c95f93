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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_python_produce_fetch_admin() {
    let python = python();
    if !has_module(&python, "kafka") {
        // `.ci/run` sets KAIROS_TEST_PYTHON to a venv it installed kafka-python into: there a
        // missing module is a broken setup, and skipping would hide it.
        assert!(
            std::env::var_os("KAIROS_TEST_PYTHON").is_none(),
            "KAIROS_TEST_PYTHON={python} cannot import kafka"
        );
        eprintln!(
            "SKIPPED kafka_python_produce_fetch_admin: `{python}` cannot import kafka \
             (pip install -r tests/clients/requirements.txt, or set KAIROS_TEST_PYTHON to a venv's python)"
        );
        return;
    }
    let broker = support::embedded().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/kafka_python_smoke.py"
    );
    let bootstrap = broker.bootstrap_servers();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
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
        "kafka-python failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.trim(), "OK");
    broker.shutdown().await.unwrap();
}
