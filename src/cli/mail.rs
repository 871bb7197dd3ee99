//! `latch send-test-email ADDRESS`: one mail through the configured
//! transport, now, with the server's answer or the exact failure.

use clap::Args;

use super::{Failure, Outcome, Target, block_on};
use crate::config::Config;
use crate::mail::Outgoing;

#[derive(Args, Debug)]
pub struct SendTestEmailArgs {
    #[command(flatten)]
    pub target: Target,
    /// Recipient of the test mail.
    pub address: String,
}

pub fn run(config: Config, args: SendTestEmailArgs) -> Outcome {
    block_on(send(config, args))
}

async fn send(config: Config, args: SendTestEmailArgs) -> Outcome {
    let outgoing = Outgoing::from_config(&config)?;
    let body = format!(
        "This is a test mail from latch, sent through {} by `latch send-test-email`.\n\
         Password reset mail will go the same way.\n",
        outgoing.target()
    );
    match outgoing
        .send_now(&args.address, "latch test mail", body)
        .await
    {
        Ok(answer) => {
            println!(
                "sent to {} through {}: {answer}",
                args.address,
                outgoing.target()
            );
            Ok(())
        }
        Err(why) => Err(Failure(format!(
            "could not send through {}: {why}",
            outgoing.target()
        ))),
    }
}
