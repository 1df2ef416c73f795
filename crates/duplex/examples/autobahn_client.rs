//! The client under test for Autobahn|Testsuite's fuzzing server: asks for the case count,
//! runs every case echoing each message, then asks the server to write its reports.
//! A case it cannot connect to is reported and makes the exit status non-zero once every
//! other case has run: the fuzzer's report simply lacks such a case.
//!
//! Usage: `autobahn_client [BASE_URL] [AGENT]` (default `ws://127.0.0.1:9011 duplex`).

use std::process::ExitCode;

use duplex::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, duplex::Error> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9011".to_owned());
    let agent = args.next().unwrap_or_else(|| "duplex".to_owned());

    let (mut ws, _) = duplex::connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(Message::Text(t))) => t.parse().expect("the case count is a number"),
        other => panic!("expected the case count, got {other:?}"),
    };
    ws.close(None).await?;
    println!("{count} cases");

    let mut unreached = Vec::new();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let (mut ws, _) = match duplex::connect(&url).await {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("case {case}: could not connect: {e}");
                unreached.push(case);
                continue;
            }
        };
        while let Some(message) = ws.recv().await {
            match message {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                // Failing the connection is the expected outcome of many cases.
                Err(_) => break,
            }
        }
    }

    let (mut ws, _) = duplex::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    while let Some(Ok(_)) = ws.recv().await {}
    println!("reports updated");
    if unreached.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} of {count} cases could not connect: {unreached:?}",
        unreached.len()
    );
    Ok(ExitCode::FAILURE)
}
