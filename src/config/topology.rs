//! The device tree from config `parent` links, for root-cause suppression and scoping.

use super::DeviceConfig;
use crate::model::{FastMap, Role};

/// Parent, site, tags and role of each configured device.
#[derive(Debug, Default, Clone)]
pub struct Topology {
    devices: FastMap<String, Node>,
    order: Vec<String>,
}

#[derive(Debug, Clone)]
struct Node {
    parent: Option<String>,
    site: Option<String>,
    tags: Vec<String>,
    role: Role,
}

impl Topology {
    /// Builds the tree; config validation has already refused unknown parents and cycles.
    pub fn new(devices: &[DeviceConfig]) -> Self {
        let nodes = devices
            .iter()
            .map(|d| {
                let node = Node {
                    parent: d.parent.clone(),
                    site: d.site.clone(),
                    tags: d.tags.clone(),
                    role: d.role,
                };
                (d.name.clone(), node)
            })
            .collect();
        let order = devices.iter().map(|d| d.name.clone()).collect();
        Self {
            devices: nodes,
            order,
        }
    }

    /// The device itself, then its parent, grandparent, ... up to the top.
    ///
    /// Bounded by the number of devices, so even a cycle (which validation refuses) ends.
    pub fn ancestors_or_self<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let limit = self.devices.len() + 1;
        std::iter::successors(Some(device), move |d| {
            self.devices.get(*d).and_then(|n| n.parent.as_deref())
        })
        .take(limit)
    }

    /// Site of a device, if configured.
    pub fn site(&self, device: &str) -> Option<&str> {
        self.devices.get(device).and_then(|n| n.site.as_deref())
    }

    /// Role of a device, if configured.
    pub fn role(&self, device: &str) -> Option<Role> {
        self.devices.get(device).map(|n| n.role)
    }

    /// Whether a device is configured.
    pub fn contains(&self, device: &str) -> bool {
        self.devices.contains_key(device)
    }

    /// The configured device of this name, borrowed from the topology.
    pub fn name(&self, device: &str) -> Option<&str> {
        self.devices.get_key_value(device).map(|(k, _)| k.as_str())
    }

    /// Every configured device's name, in no order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }

    /// Every configured device's name, in config order.
    pub fn names_in_order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Whether `device` is `top` or below it.
    pub fn is_under(&self, device: &str, top: &str) -> bool {
        self.ancestors_or_self(device).any(|d| d == top)
    }

    /// Whether a device carries a tag.
    pub fn has_tag(&self, device: &str, tag: &str) -> bool {
        self.devices
            .get(device)
            .is_some_and(|n| n.tags.iter().any(|t| t == tag))
    }
}
