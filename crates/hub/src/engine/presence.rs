//! Presence kept in this process (the memory and SQLite engines; Redis shares it
//! between nodes instead).

use super::PresenceMap;
use crate::protocol::reply::ClientInfo;
use std::collections::HashMap;
use std::sync::Mutex;

/// Channel to connected clients' info.
#[derive(Default)]
pub struct LocalPresence {
    channels: Mutex<HashMap<String, PresenceMap>>,
}

impl LocalPresence {
    /// Adds or replaces an entry.
    pub fn add(&self, channel: &str, client: &str, info: ClientInfo) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(channel.to_owned())
            .or_default()
            .insert(client.to_owned(), info);
    }

    /// Removes an entry; forgets the channel when it empties.
    pub fn remove(&self, channel: &str, client: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = channels.get_mut(channel) {
            map.remove(client);
            if map.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// A copy of the channel's entries.
    pub fn get(&self, channel: &str) -> PresenceMap {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.get(channel).cloned().unwrap_or_default()
    }
}
