// SPDX-License-Identifier: GPL-2.0

//! The ordered list of tests. Each test uses fresh channel ids (or its own minor) so that
//! tests do not see each other's messages; the module reload tests come last because they
//! wipe every slot (the load/unload cycles and the large-scale test, which unload the
//! module, run last of all).

mod concurrency;
mod epoll;
mod errors;
mod failslab;
mod library;
mod load_cycles;
mod mapping;
mod memcg;
mod memory;
mod module;
mod nodes;
mod permissions;
mod poll;
mod scale;
mod semantics;
mod tools;

use std::time::Duration;

use crate::Test;

/// Default per-test time limit (the emulated guest is slow).
const NORMAL: Duration = Duration::from_secs(60);

macro_rules! tests {
    ($($module:ident::$name:ident $(= $secs:expr)?),* $(,)?) => {
        vec![$(Test {
            name: stringify!($name),
            run: $module::$name,
            timeout: tests!(@timeout $($secs)?),
        }),*]
    };
    (@timeout) => { NORMAL };
    (@timeout $secs:expr) => { Duration::from_secs($secs) };
}

/// Every test, in running order.
pub fn all() -> Vec<Test> {
    tests![
        errors::ioctl_channel_zero_einval,
        errors::ioctl_arg_over_u32_einval,
        errors::ioctl_other_cmds_einval_keep_channel,
        errors::ioctl_extreme_ids,
        errors::new_fd_starts_unbound,
        errors::unbound_checks_channel_first,
        errors::write_bad_sizes_emsgsize,
        errors::write_efault_keeps_old,
        errors::read_no_message_ewouldblock,
        errors::read_small_buffer_enospc,
        errors::read_efault_keeps_message,
        mapping::mapping_abi_errors,
        mapping::mapping_creates_channel_without_message,
        mapping::mapping_refuses_writes,
        mapping::mapped_page_holds_only_records,
        semantics::roundtrip_one_byte_nul,
        semantics::roundtrip_128_bytes_nuls,
        semantics::roundtrip_every_length,
        semantics::read_does_not_consume,
        semantics::overwrite_shorter_exact,
        semantics::per_fd_channels,
        semantics::dup_and_fork_share_binding,
        semantics::persists_after_close,
        semantics::persists_across_processes,
        semantics::minors_isolated,
        semantics::minor_255,
        semantics::rdonly_wronly_fds,
        mapping::mapping_fork_close_rebind_munmap,
        concurrency::concurrent_processes_one_channel = 150,
        concurrency::concurrent_processes_many_channels = 150,
        concurrency::concurrent_threads = 120,
        concurrency::shared_fd_rebinding = 120,
        mapping::mapped_reads_never_torn = 300,
        tools::tools_example_session,
        tools::tools_reader_raw_bytes,
        tools::tools_reader_errors,
        tools::tools_sender_errors,
        tools::tools_reader_mapped,
        tools::header_user_c,
        library::library_mapped_reads,
        library::library_mapped_wait_and_rebind,
        scale::million_channels = 240,
        scale::sparse_channel_ids = 120,
        memory::closing_files_frees_their_memory = 300,
        poll::poll_unbound_pollerr,
        poll::poll_readable_until_read,
        poll::poll_wakeup_latency_under_load = 120,
        poll::poll_no_lost_wakeup = 240,
        poll::poll_many_pollers_right_ones_wake,
        epoll::epoll_exclusive_200_channels = 360,
        epoll::epoll_exclusive_four_waiters_one_channel = 120,
        poll::poll_no_herd = 180,
        poll::poll_new_channel_counted,
        epoll::epoll_level_and_edge_triggered,
        poll::poll_close_while_polling,
        tools::tools_reader_wait,
        tools::tools_reader_follow = 120,
        poll::rmmod_refused_while_polling = 90,
        nodes::class_device_nodes,
        nodes::slot_statistics,
        nodes::bytes_statistic_never_wraps = 60,
        tools::tools_message_slot_stat,
        module::rmmod_refused_while_open = 90,
        module::reload_wipes_messages = 300,
        mapping::rmmod_refused_while_mapped = 90,
        permissions::permissions_unprivileged,
        failslab::failslab_enomem = 120,
        failslab::failslab_poll_error_leaves_nothing = 60,
        memcg::memcg_enomem_not_oom = 960,
        memcg::memcg_overwrite_at_limit = 960,
        memcg::memcg_reclaim_makes_room = 960,
        memcg::memcg_mapped_records_charged = 300,
        memcg::memcg_mapped_enomem_not_oom = 960,
        // These unload the module (and load it again).
        load_cycles::load_unload_cycles = 1500,
        scale::large_scale_two_slots = 2400,
        mapping::mapped_million_channels = 2400,
        module::max_channels_param = 60,
        mapping::mapping_at_max_channels_enospc = 60,
        module::max_channels_last_place_race = 600,
        module::max_channels_refusals_leave_nothing = 600,
        memcg::memcg_full_slot_enospc_first = 300,
        nodes::nodes_param = 240,
    ]
}
