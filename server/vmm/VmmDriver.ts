import type { ControlChannel } from './ControlChannel';

/** Files that make a bootable guest. Built by `agentvm image build` (server/vmm/image). */
export interface GuestImage {
  /** Content hash of the image inputs; part of every snapshot's identity. */
  key: string;
  kernelPath: string;
  initramfsPath: string;
  /** Read-only ext4 base image; every VM gets its own qcow2 overlay on top. */
  rootfsPath: string;
}

export type Accelerator = 'kvm' | 'tcg';

/** What to boot. All paths the driver creates live under `vmDir`. */
export interface VmSpec {
  /** Agent id; used in process titles and logs. */
  id: string;
  /** Per-VM directory: overlay.qcow2, qmp.sock, control.sock, console.log, snapshot files. */
  vmDir: string;
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  /** Deadline for QEMU to start and the guest agent to say `ready`, in milliseconds. */
  bootTimeoutMs: number;
  /** Highest guest event seq the broker has stored; sent in `hello` so the guest re-sends the rest. */
  lastSeq?: number;
  /** Egress: the guest-side address forwarded to the broker's proxy (policy layer fills this). */
  /** `socketPath`: the agent's egress listener (a unix socket) that each guest connection is relayed to. */
  egress?: { guestAddress: string; guestPort: number; socketPath: string };
}

/** A snapshot of a paused VM: device + memory state; the disk is the VM's overlay, left in place. */
export interface SnapshotInfo {
  /** Path of the migration stream file. */
  statePath: string;
  sizeBytes: number;
  /** Checksum of the state file, `algorithm:hex` (stateChecksum.ts); checked before every restore. */
  checksum: string;
  /** How long the VM was paused to write it, in milliseconds. */
  durationMs: number;
  /** QMP migration capabilities set when it was written; a restore sets the same ones. */
  migrationCapabilities?: string[];
  /**
   * Guest RAM was a memory backend with the id `mem` (a VM cloned from a template, or restored from
   * such a VM's snapshot). A restore must name its RAM the same way: migration matches RAM by name.
   */
  namedMemoryBackend?: boolean;
  /**
   * Guest RAM kept apart from the state file, page for page at its guest offset: a restore maps it
   * copy-on-write instead of loading it, as a clone maps its template's memory.
   */
  memory?: SnapshotMemory;
  /**
   * Guest RAM is this file (a template's memory) mapped copy-on-write, and the state file carries
   * the pages the VM changed: a restore maps the file again and loads the state over it. Set for
   * a template clone and every VM restored from its snapshots; such a snapshot is small.
   */
  memoryBase?: SnapshotMemoryBase;
}

/** The file a snapshot's RAM builds on (see {@link SnapshotInfo.memoryBase}). */
export interface SnapshotMemoryBase {
  path: string;
  /** The guest RAM size; the file's length. */
  sizeBytes: number;
  /** What tells this file from one put at its path later (server/vmm/qemu/memoryBase.ts). */
  version: string;
}

/** A snapshot's RAM as a sparse file (see server/vmm/qemu/SparseMemoryFile.ts). */
export interface SnapshotMemory {
  path: string;
  /** The guest RAM size; the file's length. */
  sizeBytes: number;
  /** `algorithm:hex` over the pages of `runs`, in order, then the run list. */
  checksum: string;
  /** `[offset, bytes]` of what was written, in write order; the rest is holes (zero). */
  runs: Array<[offset: number, bytes: number]>;
}

/**
 * A VM booted once to `ready` and saved for cloning (see server/vmm/templates). Its memory lives in
 * `memoryPath`, which every clone maps copy-on-write; `snapshot` holds device state only.
 */
export interface VmTemplate {
  /** Identity of the template (hash of image key, shape, device layout and builder version). */
  key: string;
  /** Guest RAM, exactly `memoryMiB` MiB; read-only for clones. */
  memoryPath: string;
  /** The template's frozen qcow2 disk; every clone's overlay uses it as its backing file. */
  diskPath: string;
  /** Device state written with `x-ignore-shared`. */
  snapshot: SnapshotInfo;
  memoryMiB: number;
  vcpus: number;
  /** Whether the template was booted with the egress network device; a clone needs the same. */
  egress: boolean;
}

export interface VmExit {
  code: number | null;
  signal: string | null;
  /** Last lines of the serial console, for error reports. */
  consoleTail: string[];
}

/** A running (or paused) VM process. */
export interface Vm {
  readonly id: string;
  readonly pid: number;
  readonly accel: Accelerator;
  /** Connected control channel to the guest agent (already past `ready`). */
  readonly channel: ControlChannel;
  /** Resolves once when the VMM process ends, whatever the reason. */
  readonly exited: Promise<VmExit>;
  /** Its start found the VMM process launched ahead (see {@link VmmDriver.prepareSpare}). */
  readonly startedFromSpare?: boolean;
  /** Stop the vCPUs (QMP `stop`). */
  pause(): Promise<void>;
  /** Continue the vCPUs (QMP `cont`). */
  resume(): Promise<void>;
  /**
   * Pause, write device + memory state to `${vmDir}/snapshot.state`, and end the VMM process.
   * Written to a temporary name and renamed only when complete, so a crash leaves no file a later
   * restore would trust.
   */
  snapshot(): Promise<SnapshotInfo>;
  /** End the VM now (QMP `quit`, then SIGKILL after a grace period). Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Close every connection the broker holds to the VM and leave it running, for a broker that
   * exits while its VMs go on; the next broker attaches to them (`VmmDriver.attach`).
   */
  detach(): void;
}

/** How a start may be called off by its caller. */
export interface VmStartOptions {
  /**
   * Gives the start up: the VMM process it launched is ended and the call rejects with the
   * signal's reason as soon as the current step yields (it does not wait for the guest's `ready`).
   */
  signal?: AbortSignal;
}

/** A VMM: QEMU microvm today; Firecracker and Cloud Hypervisor behind the same interface. */
export interface VmmDriver {
  readonly name: string;
  /** Cold-boot a VM and wait until its guest agent answers on the control channel. */
  boot(spec: VmSpec, options?: VmStartOptions): Promise<Vm>;
  /** Start a VM from a snapshot made by {@link Vm.snapshot}; verifies its checksum first. */
  restore(spec: VmSpec, snapshot: SnapshotInfo, options?: VmStartOptions): Promise<Vm>;
  /** Reattach to a VM process that outlived a broker restart; throws if it is gone. */
  attach(spec: VmSpec, pid: number): Promise<Vm>;
  /**
   * End a VM process still running for `vmDir` that no broker holds (recovery could not attach to
   * it, or its agent is being removed). Resolves true when there was one.
   */
  stopLeftover?(vmDir: string): Promise<boolean>;
  /**
   * Boot a VM whose RAM is the shared file `${spec.vmDir}/memory.ram`, wait for `ready`, save its
   * device state and end it, leaving the files a {@link VmTemplate} names in `spec.vmDir`.
   * Optional: a driver without it has no templates and always cold-boots.
   */
  buildTemplate?(spec: VmSpec, options?: VmStartOptions): Promise<VmTemplate>;
  /**
   * Start a VM from a template: a new overlay on the template's disk, its memory mapped
   * copy-on-write, its device state loaded; resolves once the guest agent answered `hello`.
   */
  clone?(spec: VmSpec, template: VmTemplate, options?: VmStartOptions): Promise<Vm>;
  /**
   * Do ahead of time what a {@link clone} with this spec and template can (launch the VMM process,
   * make the disk), so that the clone, when it comes, only restores. Resolves true once that is
   * done, false when it could not be (the clone then starts as usual). Any other start in
   * `spec.vmDir`, {@link stopLeftover} and {@link discardSpare} end it.
   */
  prepareSpare?(spec: VmSpec, template: VmTemplate): Promise<boolean>;
  /** Whether a spare prepared by {@link prepareSpare} waits in `vmDir`. */
  hasSpare?(vmDir: string): boolean;
  /** End the spare waiting in `vmDir`, if any; true if there was one. */
  discardSpare?(vmDir: string): Promise<boolean>;
  /** Release what the driver holds for VMs to come (spares); VMs that run are left running. */
  close?(): Promise<void>;
}
