/**
 * The host ABI as imports: every function of the table, `(req_ptr, req_len) -> packed reply`
 * (`docs/host_abi.md`). Only the functions a capsule actually calls end up imported.
 * Use the typed modules (`fs`, `kv`, …) instead of these.
 */

@external("astrid", "fs_exists")
export declare function fs_exists(ptr: usize, len: usize): u64;

@external("astrid", "fs_read_file")
export declare function fs_read_file(ptr: usize, len: usize): u64;

@external("astrid", "fs_write_file")
export declare function fs_write_file(ptr: usize, len: usize): u64;

@external("astrid", "fs_mkdir")
export declare function fs_mkdir(ptr: usize, len: usize): u64;

@external("astrid", "fs_readdir")
export declare function fs_readdir(ptr: usize, len: usize): u64;

@external("astrid", "fs_stat")
export declare function fs_stat(ptr: usize, len: usize): u64;

@external("astrid", "fs_unlink")
export declare function fs_unlink(ptr: usize, len: usize): u64;

@external("astrid", "ipc_publish")
export declare function ipc_publish(ptr: usize, len: usize): u64;

@external("astrid", "ipc_subscribe")
export declare function ipc_subscribe(ptr: usize, len: usize): u64;

@external("astrid", "ipc_recv")
export declare function ipc_recv(ptr: usize, len: usize): u64;

@external("astrid", "ipc_poll")
export declare function ipc_poll(ptr: usize, len: usize): u64;

@external("astrid", "ipc_unsubscribe")
export declare function ipc_unsubscribe(ptr: usize, len: usize): u64;

@external("astrid", "uplink_register")
export declare function uplink_register(ptr: usize, len: usize): u64;

@external("astrid", "uplink_send")
export declare function uplink_send(ptr: usize, len: usize): u64;

@external("astrid", "kv_get")
export declare function kv_get(ptr: usize, len: usize): u64;

@external("astrid", "kv_set")
export declare function kv_set(ptr: usize, len: usize): u64;

@external("astrid", "kv_delete")
export declare function kv_delete(ptr: usize, len: usize): u64;

@external("astrid", "kv_list_keys")
export declare function kv_list_keys(ptr: usize, len: usize): u64;

@external("astrid", "kv_clear_prefix")
export declare function kv_clear_prefix(ptr: usize, len: usize): u64;

@external("astrid", "http_request")
export declare function http_request(ptr: usize, len: usize): u64;

@external("astrid", "http_stream_start")
export declare function http_stream_start(ptr: usize, len: usize): u64;

@external("astrid", "http_stream_read")
export declare function http_stream_read(ptr: usize, len: usize): u64;

@external("astrid", "http_stream_close")
export declare function http_stream_close(ptr: usize, len: usize): u64;

@external("astrid", "net_bind_unix")
export declare function net_bind_unix(ptr: usize, len: usize): u64;

@external("astrid", "net_accept")
export declare function net_accept(ptr: usize, len: usize): u64;

@external("astrid", "net_poll_accept")
export declare function net_poll_accept(ptr: usize, len: usize): u64;

@external("astrid", "net_read")
export declare function net_read(ptr: usize, len: usize): u64;

@external("astrid", "net_write")
export declare function net_write(ptr: usize, len: usize): u64;

@external("astrid", "net_close_stream")
export declare function net_close_stream(ptr: usize, len: usize): u64;

@external("astrid", "identity_resolve")
export declare function identity_resolve(ptr: usize, len: usize): u64;

@external("astrid", "identity_link")
export declare function identity_link(ptr: usize, len: usize): u64;

@external("astrid", "identity_unlink")
export declare function identity_unlink(ptr: usize, len: usize): u64;

@external("astrid", "identity_create_user")
export declare function identity_create_user(ptr: usize, len: usize): u64;

@external("astrid", "identity_list_links")
export declare function identity_list_links(ptr: usize, len: usize): u64;

@external("astrid", "elicit")
export declare function elicit(ptr: usize, len: usize): u64;

@external("astrid", "has_secret")
export declare function has_secret(ptr: usize, len: usize): u64;

@external("astrid", "signal_ready")
export declare function signal_ready(ptr: usize, len: usize): u64;

@external("astrid", "get_caller")
export declare function get_caller(ptr: usize, len: usize): u64;

@external("astrid", "get_config")
export declare function get_config(ptr: usize, len: usize): u64;

@external("astrid", "process_spawn")
export declare function process_spawn(ptr: usize, len: usize): u64;

@external("astrid", "process_spawn_background")
export declare function process_spawn_background(ptr: usize, len: usize): u64;

@external("astrid", "process_read_logs")
export declare function process_read_logs(ptr: usize, len: usize): u64;

@external("astrid", "process_kill")
export declare function process_kill(ptr: usize, len: usize): u64;

@external("astrid", "request_approval")
export declare function request_approval(ptr: usize, len: usize): u64;

@external("astrid", "check_capsule_capability")
export declare function check_capsule_capability(ptr: usize, len: usize): u64;

@external("astrid", "enumerate_capabilities")
export declare function enumerate_capabilities(ptr: usize, len: usize): u64;

@external("astrid", "trigger_hook")
export declare function trigger_hook(ptr: usize, len: usize): u64;

@external("astrid", "get_interceptor_handles")
export declare function get_interceptor_handles(ptr: usize, len: usize): u64;

@external("astrid", "clock_ms")
export declare function clock_ms(ptr: usize, len: usize): u64;

@external("astrid", "log")
export declare function log(ptr: usize, len: usize): u64;

@external("astrid", "random_bytes")
export declare function random_bytes(ptr: usize, len: usize): u64;
