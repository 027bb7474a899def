// Unit tests of src/core/state.ts (SPEC §3): planning ops against the registry state.
import { describe, expect, it } from 'vitest';
import type { SignerSet } from '../../../src/core/schemas.js';
import { planOps, RegistryState } from '../../../src/core/state.js';
import { del, put, setSigners, signerSet } from '../../helpers/fixtures.js';
import { alice, bob, dave, expectRefusal, set3 } from './fixtures.js';

describe('planOps (SPEC §3)', () => {
  const fresh = (): RegistryState => new RegistryState(set3);

  it('refuses the same id twice in one proposal (put, put)', () => {
    expectRefusal(() => planOps(fresh(), [put('a'), put('a', { x: '1' })], 1), 'BadRequest', /more than once/);
  });

  it('refuses the same id twice in one proposal (put, delete)', () => {
    const state = fresh();
    state.apply(planOps(state, [put('a')], 1));
    expectRefusal(() => planOps(state, [put('a'), del('a')], 2), 'BadRequest', /more than once/);
    expectRefusal(() => planOps(state, [del('a'), put('a')], 2), 'BadRequest', /more than once/);
  });

  it('refuses a delete of an id absent from the base state', () => {
    expectRefusal(() => planOps(fresh(), [del('missing')], 1), 'BadRequest', /missing/);
  });

  it('refuses two set_signers', () => {
    expectRefusal(() => planOps(fresh(), [setSigners(set3), setSigners({ ...set3, threshold: 1 })], 1), 'BadRequest', /set_signers/);
  });

  it('refuses a set_signers whose set is invalid or breaks the id-key rule', () => {
    expectRefusal(() => planOps(fresh(), [setSigners({ ...set3, threshold: 0 })], 1), 'BadRequest', /threshold/);
    const stolen: SignerSet = { threshold: 1, signers: [{ id: 'zz', public_key: alice!.publicKey }] };
    expectRefusal(() => planOps(fresh(), [setSigners(stolen)], 1), 'BadRequest', /alice/);
  });

  it('plans without touching the state; apply changes it as rootAfter predicted', () => {
    const state = fresh();
    const emptyRoot = state.root();
    const delta = planOps(state, [put('svc-a', { region: 'eu' }), put('svc-b')], 7);
    expect(state.size).toBe(0);
    expect(state.root()).toBe(emptyRoot);
    expect(delta.version).toBe(7);
    expect(delta.changed).toEqual(['svc-a', 'svc-b']);
    const predicted = state.rootAfter(delta);
    expect(predicted).not.toBe(emptyRoot);
    expect(state.root()).toBe(emptyRoot); // rootAfter does not change the state either
    state.apply(delta);
    expect(state.size).toBe(2);
    expect(state.entries.get('svc-a')?.changedIn).toBe(7);
    expect(state.entries.get('svc-a')?.descriptor.labels).toEqual({ region: 'eu' });
    expect(state.root()).toBe(predicted);
  });

  it('a replacing put changes the root and changedIn; deleting everything gives back the empty root', () => {
    const state = fresh();
    const emptyRoot = state.root();
    state.apply(planOps(state, [put('svc-a'), put('svc-b')], 1));
    const root1 = state.root();
    const replace = planOps(state, [put('svc-a', { v: '2' })], 2);
    const root2 = state.rootAfter(replace);
    state.apply(replace);
    expect(state.root()).toBe(root2);
    expect(root2).not.toBe(root1);
    expect(state.entries.get('svc-a')?.changedIn).toBe(2);
    expect(state.entries.get('svc-b')?.changedIn).toBe(1);
    const wipe = planOps(state, [del('svc-a'), del('svc-b')], 3);
    expect(wipe.deletes).toEqual(['svc-a', 'svc-b']);
    expect(state.rootAfter(wipe)).toBe(emptyRoot);
    state.apply(wipe);
    expect(state.size).toBe(0);
    expect(state.root()).toBe(emptyRoot);
  });

  it('set_signers changes the root (the signer set is part of it) and the state signer set', () => {
    const state = fresh();
    const before = state.root();
    const next = signerSet([alice!, bob!, dave!], 2);
    const delta = planOps(state, [setSigners(next)], 1);
    expect(delta.signerSet).toEqual(next);
    expect(delta.changed).toEqual([]);
    const predicted = state.rootAfter(delta);
    expect(predicted).not.toBe(before);
    state.apply(delta);
    expect(state.signerSet).toEqual(next);
    expect(state.root()).toBe(predicted);
    expect(predicted).toBe(new RegistryState(next).root());
  });
});
