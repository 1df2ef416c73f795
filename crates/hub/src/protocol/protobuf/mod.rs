//! The protocol's Protobuf format (WebSocket subprotocol `centrifuge-protobuf`): a
//! binary message holds commands (or replies), each prefixed with its length as a varint.
//!
//! The messages are the same as the JSON format's; only the encoding differs, so this
//! module converts between the wire types in [`wire`] and the codec's own
//! ([`Command`], [`Reply`], [`Publication`]). `bytes` fields carry the payload's bytes.
//! A publication may carry any bytes ([`Payload`]); the other payloads (connect,
//! subscribe, RPC and send data, which the hub hands to the backend's proxy as JSON) must
//! be JSON, or that command is refused with error 107 (bad request).

pub mod wire;

use super::codes::{self, DisconnectCode, ErrorCode, UnsubscribeCode};
use super::command::{
    ChannelRequest, Command, ConnectRequest, DecodeError, HistoryRequest, PublishRequest,
    RefreshRequest, Request, RpcRequest, SendRequest, StreamPosition, SubRefreshRequest,
    SubscribeRequest, MAX_COMMANDS,
};
use super::reply::{ClientInfo, Json, Publication, Reply, SubscribeResult};
use super::Payload;
use prost::Message as _;
use serde_json::value::RawValue;

/// The WebSocket subprotocol a client offers to speak this format.
pub const SUBPROTOCOL: &str = "centrifuge-protobuf";

/// Decodes one WebSocket binary message: length-delimited commands.
pub fn decode(message: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut rest = message;
    let mut commands = Vec::new();
    while !rest.is_empty() {
        if commands.len() == MAX_COMMANDS {
            return Err(DecodeError::TooMany);
        }
        let index = commands.len() + 1;
        let raw = wire::Command::decode_length_delimited(&mut rest).map_err(|e| {
            DecodeError::Protobuf {
                index,
                reason: e.to_string(),
            }
        })?;
        commands.push(super::command::checked(into_command(raw), index)?);
    }
    Ok(commands)
}

/// A payload field: absent when empty (protobuf cannot tell the two apart), refused
/// when not JSON.
fn payload(bytes: Vec<u8>) -> Result<Option<Box<RawValue>>, ()> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8(bytes).map_err(drop)?;
    RawValue::from_string(text).map(Some).map_err(drop)
}

fn subscribe_request(r: wire::SubscribeRequest) -> Result<SubscribeRequest, ()> {
    Ok(SubscribeRequest {
        channel: r.channel,
        token: r.token,
        recover: r.recover,
        epoch: r.epoch,
        offset: r.offset,
        positioned: r.positioned,
        recoverable: r.recoverable,
        join_leave: r.join_leave,
        data: payload(r.data)?,
        flag: r.flag,
    })
}

fn into_command(raw: wire::Command) -> Command {
    let refused = |method| Request::Refused {
        method,
        reason: "its data is not JSON (this hub stores and forwards JSON payloads)",
    };
    let request = if let Some(r) = raw.connect {
        let subs = r
            .subs
            .into_iter()
            .map(|(channel, s)| subscribe_request(s).map(|s| (channel, s)))
            .collect::<Result<_, ()>>();
        match (payload(r.data), subs) {
            (Ok(data), Ok(subs)) => Request::Connect(ConnectRequest {
                token: r.token,
                data,
                subs,
                name: r.name,
                version: r.version,
            }),
            _ => refused("connect"),
        }
    } else if let Some(r) = raw.subscribe {
        subscribe_request(r).map_or_else(|()| refused("subscribe"), Request::Subscribe)
    } else if let Some(r) = raw.unsubscribe {
        Request::Unsubscribe(ChannelRequest { channel: r.channel })
    } else if let Some(r) = raw.publish {
        Request::Publish(PublishRequest {
            channel: r.channel,
            data: Payload::from_bytes(r.data),
            idempotency_key: None,
        })
    } else if let Some(r) = raw.presence {
        Request::Presence(ChannelRequest { channel: r.channel })
    } else if let Some(r) = raw.presence_stats {
        Request::PresenceStats(ChannelRequest { channel: r.channel })
    } else if let Some(r) = raw.history {
        Request::History(HistoryRequest {
            channel: r.channel,
            limit: r.limit,
            since: r.since.map(|s| StreamPosition {
                offset: s.offset,
                epoch: s.epoch,
            }),
            reverse: r.reverse,
        })
    } else if raw.ping.is_some() {
        Request::Ping
    } else if let Some(r) = raw.send {
        payload(r.data).map_or_else(
            |()| refused("send"),
            |data| Request::Send(SendRequest { data }),
        )
    } else if let Some(r) = raw.rpc {
        match payload(r.data) {
            Ok(data) => Request::Rpc(RpcRequest {
                method: r.method,
                data,
            }),
            Err(()) => refused("rpc"),
        }
    } else if let Some(r) = raw.refresh {
        Request::Refresh(RefreshRequest { token: r.token })
    } else if let Some(r) = raw.sub_refresh {
        Request::SubRefresh(SubRefreshRequest {
            channel: r.channel,
            token: r.token,
        })
    } else {
        Request::Pong
    };
    Command {
        id: raw.id,
        request,
    }
}

fn bytes(json: Option<&Json>) -> Vec<u8> {
    json.map(|j| j.get().as_bytes().to_vec())
        .unwrap_or_default()
}

fn info(info: &ClientInfo) -> wire::ClientInfo {
    wire::ClientInfo {
        user: info.user.clone(),
        client: info.client.clone(),
        conn_info: bytes(info.conn_info.as_ref()),
        chan_info: bytes(info.chan_info.as_ref()),
    }
}

fn publication(p: &Publication) -> wire::Publication {
    wire::Publication {
        data: p.data.as_bytes().to_vec(),
        info: p.info.as_ref().map(info),
        offset: p.offset,
    }
}

fn publications(list: &[Publication]) -> Vec<wire::Publication> {
    list.iter().map(publication).collect()
}

fn subscribe_result(r: &SubscribeResult) -> wire::SubscribeResult {
    wire::SubscribeResult {
        expires: r.expires,
        ttl: r.ttl,
        recoverable: r.recoverable,
        epoch: r.epoch.clone(),
        publications: publications(&r.publications),
        recovered: r.recovered,
        offset: r.offset,
        positioned: r.positioned,
        data: bytes(r.data.as_ref()),
        was_recovering: r.was_recovering,
    }
}

fn delimited(reply: &wire::Reply) -> Vec<u8> {
    reply.encode_length_delimited_to_vec()
}

/// The reply to command `id`.
pub fn encode_reply(id: u32, reply: &Reply) -> Vec<u8> {
    let mut out = wire::Reply {
        id,
        ..Default::default()
    };
    let empty = Some(wire::Empty {});
    match reply {
        Reply::Connect(r) => {
            out.connect = Some(wire::ConnectResult {
                client: r.client.clone(),
                version: r.version.clone(),
                expires: r.expires,
                ttl: r.ttl,
                data: bytes(r.data.as_ref()),
                subs: r
                    .subs
                    .iter()
                    .map(|(channel, s)| (channel.clone(), subscribe_result(s)))
                    .collect(),
                ping: r.ping,
                pong: r.pong,
            })
        }
        Reply::Subscribe(r) => out.subscribe = Some(subscribe_result(r)),
        Reply::Unsubscribe => out.unsubscribe = empty,
        Reply::Publish => out.publish = empty,
        Reply::Presence(r) => {
            out.presence = Some(wire::PresenceResult {
                presence: r
                    .presence
                    .iter()
                    .map(|(client, i)| (client.clone(), info(i)))
                    .collect(),
            })
        }
        Reply::PresenceStats(r) => {
            out.presence_stats = Some(wire::PresenceStatsResult {
                num_clients: r.num_clients,
                num_users: r.num_users,
            })
        }
        Reply::History(r) => {
            out.history = Some(wire::HistoryResult {
                publications: publications(&r.publications),
                epoch: r.epoch.clone(),
                offset: r.offset,
            })
        }
        Reply::Ping => out.ping = empty,
        Reply::Rpc(data) => {
            out.rpc = Some(wire::RpcResult {
                data: bytes(data.as_ref()),
            })
        }
        Reply::Refresh(r) => {
            out.refresh = Some(wire::RefreshResult {
                client: r.client.clone(),
                version: r.version.clone(),
                expires: r.expires,
                ttl: r.ttl,
            })
        }
        Reply::SubRefresh(r) => {
            out.sub_refresh = Some(wire::SubRefreshResult {
                expires: r.expires,
                ttl: r.ttl,
            })
        }
    }
    delimited(&out)
}

/// Command `id` failed with an error the backend chose.
pub fn encode_custom_error(id: u32, code: u32, message: &str, temporary: bool) -> Vec<u8> {
    delimited(&wire::Reply {
        id,
        error: Some(wire::Error {
            code,
            message: message.to_owned(),
            temporary,
        }),
        ..Default::default()
    })
}

/// Command `id` failed with `code`.
pub fn encode_error(id: u32, code: ErrorCode) -> Vec<u8> {
    encode_custom_error(id, code.code(), code.message(), code.temporary())
}

/// The hub's ping: an empty reply (its length, zero, is all there is).
pub fn encode_ping() -> Vec<u8> {
    vec![0]
}

fn push(channel: &str, fill: impl FnOnce(&mut wire::Push)) -> Vec<u8> {
    let mut push = wire::Push {
        channel: channel.to_owned(),
        ..Default::default()
    };
    fill(&mut push);
    delimited(&wire::Reply {
        push: Some(push),
        ..Default::default()
    })
}

/// A `pub` push: one publication in `channel`.
pub fn encode_publication(channel: &str, p: &Publication) -> Vec<u8> {
    push(channel, |push| push.publication = Some(publication(p)))
}

/// A `join` push.
pub fn encode_join(channel: &str, who: &ClientInfo) -> Vec<u8> {
    let join = wire::InfoPush {
        info: Some(info(who)),
    };
    push(channel, |push| push.join = Some(join))
}

/// A `leave` push.
pub fn encode_leave(channel: &str, who: &ClientInfo) -> Vec<u8> {
    let leave = wire::InfoPush {
        info: Some(info(who)),
    };
    push(channel, |push| push.leave = Some(leave))
}

/// An `unsubscribe` push: the hub ended the subscription.
pub fn encode_unsubscribe(channel: &str, code: UnsubscribeCode) -> Vec<u8> {
    let unsubscribe = wire::Unsubscribe {
        code: code.code(),
        reason: code.reason().to_owned(),
    };
    push(channel, |push| push.unsubscribe = Some(unsubscribe))
}

/// A `disconnect` push.
pub fn encode_disconnect(code: DisconnectCode) -> Vec<u8> {
    encode_custom_disconnect(code.code(), code.reason())
}

/// A `disconnect` push with any code and reason (the backend's).
pub fn encode_custom_disconnect(code: u16, reason: &str) -> Vec<u8> {
    let disconnect = wire::Disconnect {
        code: code.into(),
        reason: reason.to_owned(),
        reconnect: codes::reconnects(code),
    };
    push("", |push| push.disconnect = Some(disconnect))
}

/// A `subscribe` push: a server-side subscription made after connect.
pub fn encode_subscribe(channel: &str, r: &SubscribeResult) -> Vec<u8> {
    let subscribe = wire::Subscribe {
        recoverable: r.recoverable,
        epoch: r.epoch.clone(),
        offset: r.offset,
        positioned: r.positioned,
        data: bytes(r.data.as_ref()),
    };
    push(channel, |push| push.subscribe = Some(subscribe))
}

#[cfg(test)]
mod tests;
