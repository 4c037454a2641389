/** Maps a failed spool commit to the reason a client and an operator see. */
export function spoolFailureReason(error: unknown): string {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SPOOL_FULL') return 'spool_full';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'disk_full';
  if (code.startsWith('SQLITE_IOERR')) return 'spool_io_error';
  if (code.startsWith('SQLITE_BUSY')) return 'spool_busy';
  return 'spool_unavailable';
}
