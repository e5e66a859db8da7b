// The queue of sends or receives waiting for the socket, in call order.

/** One waiting call: settled once, by the socket, a timeout, or a cancel. */
export interface Waiter<T> {
  resolve(value: T): void
  reject(err: unknown): void
  timer: NodeJS.Timeout | null
  cancelled: boolean
  served: boolean
}

/**
 * A FIFO of waiting sends or receives: O(1) at both ends however long it grows (an
 * array's shift() is O(n), which made 100 000 un-awaited sends quadratic), and O(1)
 * cancellation (a timed-out entry is marked and skipped, not searched for).
 */
export class WaitQueue<W extends { cancelled: boolean; served: boolean }> {
  #items: (W | undefined)[] = []
  #head = 0
  /** Live entries (neither served nor cancelled). */
  length = 0

  push(entry: W): void {
    this.#items.push(entry)
    this.length++
  }

  /** The oldest live entry, or undefined. */
  peek(): W | undefined {
    const items = this.#items
    while (this.#head < items.length && items[this.#head]!.cancelled) items[this.#head++] = undefined
    return this.#head < items.length ? items[this.#head] : undefined
  }

  shift(): W | undefined {
    const entry = this.peek()
    if (entry === undefined) return undefined
    this.#items[this.#head++] = undefined
    this.length--
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return entry
  }

  /** Takes `entry` out if it is still waiting; false if it was already served. */
  cancel(entry: W): boolean {
    if (entry.cancelled || entry.served) return false
    entry.cancelled = true
    this.length--
    return true
  }

  /** Empties the queue, returning the live entries in order. */
  drain(): W[] {
    const live: W[] = []
    for (let e = this.shift(); e !== undefined; e = this.shift()) live.push(e)
    this.#items = []
    this.#head = 0
    return live
  }
}
