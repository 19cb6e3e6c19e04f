/**
 * Folder-private: one principal's FIFO inside a routed subscription, and the max-heap that
 * finds the heaviest principal for eviction.
 *
 * A queue exists only while it holds messages (each subscription keeps at most one drained
 * queue for reuse, so a principal that publishes, is drained and publishes again allocates
 * nothing). It is an array with a moving head (no node or closure per message), a link into the
 * subscription's circular round-robin list and a slot in the heap, so an active principal costs
 * one small object, one array and one map entry.
 *
 * @module
 */
import type { PrincipalId } from "../identity/mod.ts";
import type { BusMessage } from "./bus_message.ts";

/** Bytes charged per queued message on top of its payload, for the envelope. */
export const MESSAGE_OVERHEAD_BYTES = 64;

/** What a queued message costs against a subscription's byte budget. */
export function messageCost(msg: BusMessage): number {
  return msg.size + MESSAGE_OVERHEAD_BYTES;
}

/** One principal's queued messages in one routed subscription. */
export class PrincipalQueue {
  /** The principal whose messages these are (reassigned when a drained queue is reused). */
  principal: PrincipalId;
  /** Queued messages in `[head, tail)`; other slots are empty. */
  items: (BusMessage | undefined)[];
  /** Index of the oldest queued message in `items`. */
  head = 0;
  /** Index one past the newest queued message in `items`. */
  tail = 1;
  /** Bytes queued, as charged by {@link messageCost}. */
  bytes: number;
  /** Deficit round robin: bytes this queue may still send in its current turn. */
  deficit = 0;
  /** Next queue in the round-robin ring. */
  next: PrincipalQueue;
  /** Previous queue in the round-robin ring. */
  prev: PrincipalQueue;
  /** This queue's slot in the heaviest-first heap. */
  heapIndex = -1;

  /** Creates a queue holding `first`, which costs `cost` bytes. */
  constructor(principal: PrincipalId, first: BusMessage, cost: number) {
    this.principal = principal;
    this.items = [first];
    this.bytes = cost;
    this.next = this;
    this.prev = this;
  }

  /** Reuses this drained queue for `principal`, holding `first`, which costs `cost` bytes. */
  reset(principal: PrincipalId, first: BusMessage, cost: number): void {
    this.principal = principal;
    this.items[0] = first;
    this.head = 0;
    this.tail = 1;
    this.bytes = cost;
    this.deficit = 0;
  }

  /** Releases a large backing array once drained, so a kept idle queue stays small. */
  shrink(): void {
    if (this.items.length > 16) this.items = [];
  }

  /** Number of queued messages. */
  get length(): number {
    return this.tail - this.head;
  }

  /** The oldest queued message. */
  peek(): BusMessage {
    return this.items[this.head] as BusMessage;
  }

  /** Appends `msg`, which costs `cost` bytes. */
  push(msg: BusMessage, cost: number): void {
    if (this.tail === this.items.length) this.items.push(msg);
    else this.items[this.tail] = msg;
    this.tail++;
    this.bytes += cost;
  }

  /** Removes and returns the oldest message; the caller adjusts `bytes`. */
  shift(): BusMessage {
    const items = this.items;
    const head = this.head;
    const msg = items[head] as BusMessage;
    items[head] = undefined;
    if (head + 1 === this.tail) {
      this.head = 0;
      this.tail = 0;
    } else if (head >= 32 && head * 2 >= this.tail) {
      items.copyWithin(0, head + 1, this.tail);
      items.fill(undefined, this.tail - head - 1, this.tail);
      this.tail -= head + 1;
      this.head = 0;
    } else {
      this.head = head + 1;
    }
    return msg;
  }

  /** Index (from the head, 0-based) of the oldest message that is not a stream terminator. */
  oldestEvictable(): number {
    const items = this.items;
    for (let i = this.head; i < this.tail; i++) {
      if (!(items[i] as BusMessage).end_of_stream) return i - this.head;
    }
    return 0;
  }

  /** Removes and returns the message `offset` places after the head. */
  removeAt(offset: number): BusMessage {
    if (offset === 0) return this.shift();
    const items = this.items;
    const at = this.head + offset;
    const msg = items[at] as BusMessage;
    items.copyWithin(at, at + 1, this.tail);
    this.tail--;
    items[this.tail] = undefined;
    return msg;
  }
}

/** Adds `q` to the max-heap `heap` (ordered by queued bytes). */
export function heapPush(heap: PrincipalQueue[], q: PrincipalQueue): void {
  q.heapIndex = heap.length;
  heap.push(q);
  heapUp(heap, q);
}

/** Removes `q` from `heap`. */
export function heapRemove(heap: PrincipalQueue[], q: PrincipalQueue): void {
  const i = q.heapIndex;
  const last = heap.pop() as PrincipalQueue;
  q.heapIndex = -1;
  if (last === q) return;
  heap[i] = last;
  last.heapIndex = i;
  heapUp(heap, last);
  heapDown(heap, last);
}

/** Restores heap order after `q.bytes` grew. */
export function heapUp(heap: PrincipalQueue[], q: PrincipalQueue): void {
  let i = q.heapIndex;
  while (i > 0) {
    const parentIndex = (i - 1) >> 1;
    const parent = heap[parentIndex];
    if (parent.bytes >= q.bytes) break;
    heap[i] = parent;
    parent.heapIndex = i;
    i = parentIndex;
  }
  heap[i] = q;
  q.heapIndex = i;
}

/** Restores heap order after `q.bytes` shrank. */
export function heapDown(heap: PrincipalQueue[], q: PrincipalQueue): void {
  const n = heap.length;
  let i = q.heapIndex;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && heap[r].bytes > heap[l].bytes ? r : l;
    const child = heap[c];
    if (child.bytes <= q.bytes) break;
    heap[i] = child;
    child.heapIndex = i;
    i = c;
  }
  heap[i] = q;
  q.heapIndex = i;
}
