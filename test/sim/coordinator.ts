// The coordinator Redis (DESIGN §2, §4): the versioned table, the client
// registry (clientId → applied version, `at` on the coordinator's clock), the
// migration job's saved progress, and the events channel. Each call here is
// one atomic step, as a Lua script is.
import type { Table } from './model.js';

export interface ConfirmRequest {
  /** confirm: register and read in one script; read, register: the two halves of BUG_REGISTER. */
  readonly kind: 'confirm' | 'read' | 'register';
  readonly client: string;
  readonly applied: number;
  readonly sentAt: number;
}

export interface ConfirmReply {
  /** The current table (the sim passes it whole; the real script sends it only when newer). */
  readonly table: Table;
  readonly sentAt: number;
}

export interface Entry {
  readonly applied: number;
  readonly at: number;
}

/** What a migrator saves so that another can resume its job (`…:migration`). */
export interface Progress {
  /** Index of the job in the plan. */
  job: number;
  /** The SCAN cursor on the source after the last batch that completed. */
  cursor: string;
}

export class Coordinator {
  private current: Table;
  readonly registry = new Map<string, Entry>();
  readonly progress: Progress = { job: 0, cursor: '' };

  constructor(
    initial: Table,
    private readonly clock: () => number,
    /** PUBLISH …:events (each subscriber may lose it or get it late). */
    private readonly publish: (version: number) => void,
  ) {
    this.current = initial;
  }

  get table(): Table {
    return this.current;
  }

  /** Compare-and-set on the version (the sim's migrator is the only writer), then PUBLISH. */
  write(next: Omit<Table, 'version'>): Table {
    this.current = { ...next, version: this.current.version + 1 };
    this.publish(this.current.version);
    return this.current;
  }

  /** The confirm script, or one of the halves BUG_REGISTER splits it into. */
  handle(request: ConfirmRequest): ConfirmReply | null {
    if (request.kind !== 'read') this.registry.set(request.client, { applied: request.applied, at: this.clock() });
    return request.kind === 'register' ? null : { table: this.current, sentAt: request.sentAt };
  }
}
