//! `aurora-redo explore`: the Stateright Explorer web UI for a configuration, optionally opened
//! on a trace.

use crate::counterexample::CounterexampleFile;
use aurora_redo_model::Config;
use std::net::{SocketAddr, TcpListener};

/// The Explorer URL that shows `trace`: the UI addresses a path by the URL fragment
/// `#/steps/<init index>/<action index>/...`, which is what `Path::encode` gives.
pub fn trace_url(addr: SocketAddr, trace: &CounterexampleFile) -> Result<String, String> {
    let path = trace.model_path()?;
    Ok(format!(
        "http://{addr}/#/steps/{}",
        path.encode(&trace.model())
    ))
}

/// Serves the Explorer on `addr` until the process is stopped. Fails with a message if the address
/// cannot be used.
pub fn serve(
    config: Config,
    addr: SocketAddr,
    threads: usize,
    trace: Option<&CounterexampleFile>,
) -> Result<(), String> {
    // The Explorer's own server panics on a bad address; find out first, and learn the port the
    // system chose when asked for port 0.
    let addr = TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let url = trace.map(|t| trace_url(addr, t)).transpose()?;
    println!("configuration: {config}");
    println!("Explorer: http://{addr}/ (press Ctrl-C to stop the server)");
    if let (Some(url), Some(trace)) = (url, trace) {
        println!(
            "counterexample ({} steps{}): {url}",
            trace.steps.len(),
            trace
                .property
                .as_deref()
                .map_or(String::new(), |p| format!(", violates {p}"))
        );
    }
    let model = config.into_model();
    use stateright::Model;
    model.checker().threads(threads.max(1)).serve(addr);
    Ok(())
}
