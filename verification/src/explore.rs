//! `aurora-redo explore`: the Stateright Explorer web UI for a configuration.

use aurora_redo_model::Config;
use std::net::{SocketAddr, TcpListener};

/// Serves the Explorer on `addr` until the process is stopped. Fails with a message if the address
/// cannot be used.
pub fn serve(config: Config, addr: SocketAddr, threads: usize) -> Result<(), String> {
    // The Explorer's own server panics on a bad address; find out first.
    TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("configuration: {config}");
    println!("Explorer: http://{addr}/");
    let model = config.into_model();
    use stateright::Model;
    model.checker().threads(threads.max(1)).serve(addr);
    Ok(())
}
