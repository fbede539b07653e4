/**
 * RFC 3261 timer values (§17, Table 4), with RFC 6026's Timers L and M, in one place. Every
 * transaction and the proxy's fork name their timer here; none spells out a duration.
 */

/** RTT estimate; the first retransmission interval (Timers A, E, G). */
export const T1 = 500;
/** Maximum retransmission interval for non-INVITE requests and INVITE responses. */
export const T2 = 4000;
/** Maximum duration a message remains in the network. */
export const T4 = 5000;

/** INVITE request retransmit, UDP only: starts at T1 and doubles. */
export const TIMER_A = T1;
/** INVITE transaction timeout. */
export const TIMER_B = 64 * T1;
/** Proxy INVITE transaction timeout (§16.6 step 11): a branch without final response is cancelled. */
export const TIMER_C = 180_000;
/** Wait time for response retransmits in Completed (INVITE client, UDP; 0 on reliable transports). */
export const TIMER_D = 32_000;
/** Non-INVITE request retransmit, UDP only: starts at T1, doubles up to T2. */
export const TIMER_E = T1;
/** Non-INVITE transaction timeout. */
export const TIMER_F = 64 * T1;
/** INVITE response retransmit, UDP only: starts at T1, doubles up to T2. */
export const TIMER_G = T1;
/** Wait time for ACK receipt. */
export const TIMER_H = 64 * T1;
/** Wait time for ACK retransmits (UDP; 0 on reliable transports). */
export const TIMER_I = T4;
/** Wait time for non-INVITE request retransmits (UDP; 0 on reliable transports). */
export const TIMER_J = 64 * T1;
/** Wait time for non-INVITE response retransmits (UDP; 0 on reliable transports). */
export const TIMER_K = T4;
/** RFC 6026: INVITE server transaction in Accepted, absorbing INVITE retransmissions. */
export const TIMER_L = 64 * T1;
/** RFC 6026: INVITE client transaction in Accepted, passing 2xx retransmissions up. */
export const TIMER_M = 64 * T1;

/** §9.1: a CANCELled INVITE branch with no final response after this long is given up. */
export const CANCEL_GIVE_UP = 64 * T1;
