/* The protocol between nectl's enclave init (guest/init) and the parent for
 * the app's end. Console text cannot say how an enclave ended, because any
 * process in it can print anything; so init, PID 1, connects to the parent on
 * a port of its own before it starts the app (the parent accepts exactly one
 * connection there, first come), and when the app ends writes one line:
 *   "exit N\n"    N = 0..255, the app's exit status
 *   "signal N\n"  N = 1..64, the signal that killed it
 * The parent closes the connection once it has the line; init waits for that
 * (a few seconds at most) before it reboots, so the report is not lost in
 * the guest's queues. Anything else on the connection is ignored. */
#ifndef NECTL_APP_REPORT_H
#define NECTL_APP_REPORT_H

#define APP_REPORT_PORT	    9009
#define APP_REPORT_LINE_MAX 16 /* "signal 64\n" is 10 */
#define APP_REPORT_WAIT_MS  3000

#endif
