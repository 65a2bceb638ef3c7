/* drop_cap_ipc_lock(): CAP_IPC_LOCK (14) out of the effective,
 * permitted, inheritable sets. */
static long drop_cap_ipc_lock(void)
{
	struct { uint32_t version; int pid; } head = { 0x20080522, 0 };
	struct { uint32_t effective, permitted, inheritable; } data[2];

	memset(data, 0, sizeof(data));
	sys(SYS_capget, (unsigned long)&head, (unsigned long)data,
	    0, 0, 0, 0);
	data[0].effective &= ~(1u << 14);
	data[0].permitted &= ~(1u << 14);
	data[0].inheritable &= ~(1u << 14);
	return sys(SYS_capset, (unsigned long)&head,
		   (unsigned long)data, 0, 0, 0, 0);
}
