// LoopbackGuard: keeps networked sandboxes off the host's own services.
//
// A sandbox created with spec.network shares the host's network namespace
// (sandbox.h): it reaches the internet and the LAN as the host does, and so
// would reach whatever listens on the host's loopback or its own addresses
// (the engine's API, a database on 127.0.0.1) without credentials. The guard
// is one nftables table per engine whose output-hook rule rejects packets
// sent by the sandbox uid to any local address (they leave through "lo"),
// DNS to a local resolver (port 53) excepted, so names still resolve where
// the host's resolver is a local stub. The rule costs nothing per sandbox
// (no per-cold-start step: docs/SECURITY.md, "Network", has the figures of
// the alternative, a namespace per sandbox with a veth pair and NAT).
// Sandboxes without network have their own namespace and never meet the rule.
// The rule matches the sandbox uid, which every engine on a host shares (no
// cgroup v2 or net_cls to tell engines apart here): while one engine's table
// is loaded, no engine's networked sandboxes reach the host's loopback.
//
// Full isolation only: in rootless mode the sandboxes' packets carry the
// engine user's uid on the host, and that user may not change the host's
// firewall (docs/SECURITY.md says what network=True means there).
//
// Errors: Install() returns the nft program's failure (not installed, no
// nf_tables in the kernel, refused) with its stderr; the caller decides
// (ZygoteLauncher::Start warns and says so in the isolation summary).
// Remove() is best effort. Both run `nft` and wait for it (a few ms), at
// engine start and shutdown only.
//
// Thread-safety: none needed; stateless functions, called from Start/Shutdown.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace gust::sandbox {

// The table's name for an engine's cgroup parent ("gust-7799" -> "gust_7799"):
// one per engine, so a restarted engine replaces what a crashed one left.
std::string LoopbackGuardTable(const std::string& cgroup_parent);

// The nft script that (re)creates the table atomically: declares it, deletes
// it, and defines it anew in one transaction.
std::string LoopbackGuardRules(const std::string& table, uint32_t sandbox_uid);

// Loads the rules with nft -f (the script written under scratch_dir).
Status InstallLoopbackGuard(const std::string& table, uint32_t sandbox_uid,
                            const std::string& scratch_dir);

// Deletes the table; errors ignored (it may never have been installed).
void RemoveLoopbackGuard(const std::string& table, const std::string& scratch_dir);

}  // namespace gust::sandbox
