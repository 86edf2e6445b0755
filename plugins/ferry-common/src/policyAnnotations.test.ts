import {
  lastAppliedAnnotations,
  parsePolicyAnnotations,
  policyAnnotationChanges,
} from './policyAnnotations';
import { applyPolicyUpdate } from './policyUpdate';

describe('policyAnnotationChanges', () => {
  const annotations = parsePolicyAnnotations({
    'ferry.dev/spot': 'enabled',
    'ferry.dev/permanent-ratio': '0.3',
    'ferry.dev/migration': 'teleport',
    'app.kubernetes.io/name': 'valkey',
  });

  it('applies every well-formed annotation the first time', () => {
    expect(policyAnnotationChanges(annotations, {})).toEqual({
      applied: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
      },
      changed: { enabled: true, permanentRatio: 0.3 },
    });
  });

  it('changes only the fields whose annotation changed since it was last applied', () => {
    expect(
      policyAnnotationChanges(annotations, {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.5',
      }).changed,
    ).toEqual({ permanentRatio: 0.3 });
    expect(
      policyAnnotationChanges(annotations, {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
      }).changed,
    ).toEqual({});
  });

  it('never applies a malformed annotation, and says why', () => {
    expect(annotations.errors).toEqual([
      "ferry.dev/migration is 'teleport'; use one of auto, valkey, checkpoint, volume, reschedule",
    ]);
  });
});

describe('ferry.dev/hibernate-after', () => {
  it('sets hibernateAfter, with or without ferry.dev/spot', () => {
    expect(
      parsePolicyAnnotations({ 'ferry.dev/hibernate-after': ' 10m ' }),
    ).toEqual({
      raw: { 'ferry.dev/hibernate-after': ' 10m ' },
      settings: { hibernateAfter: '10m' },
      errors: [],
    });
  });

  it('spells it without leading zeros', () => {
    expect(
      parsePolicyAnnotations({ 'ferry.dev/hibernate-after': '010m' }).settings,
    ).toEqual({ hibernateAfter: '10m' });
  });

  it.each([
    ['10 minutes', /give a whole number of seconds, minutes or hours/],
    ['2s', /between 5s and 168h/],
  ])("refuses '%s', saying what it takes", (value, message) => {
    const parsed = parsePolicyAnnotations({
      'ferry.dev/hibernate-after': value,
    });
    expect(parsed.settings).toEqual({});
    expect(parsed.errors).toEqual([expect.stringMatching(message)]);
  });
});

describe('applyPolicyUpdate', () => {
  const settings = {
    enabled: true,
    permanentRatio: 0.3,
    availabilityTarget: 0.999,
    migration: 'auto' as const,
    hibernateAfter: '10m',
  };

  it('replaces the fields the change gives and keeps the others', () => {
    expect(applyPolicyUpdate(settings, { permanentRatio: 0.5 })).toEqual({
      ...settings,
      permanentRatio: 0.5,
    });
    expect(applyPolicyUpdate(settings, { hibernateAfter: '2h' })).toEqual({
      ...settings,
      hibernateAfter: '2h',
    });
  });

  it('turns hibernation off with a hibernateAfter of null', () => {
    const { hibernateAfter: _off, ...awake } = settings;
    expect(applyPolicyUpdate(settings, { hibernateAfter: null })).toEqual(
      awake,
    );
  });
});

describe('lastAppliedAnnotations', () => {
  it.each([undefined, '', 'not json', '[1]', 'null'])(
    'reads %p as nothing applied',
    text => expect(lastAppliedAnnotations(text)).toEqual({}),
  );

  it('reads what was kept', () => {
    expect(lastAppliedAnnotations('{"ferry.dev/spot":"enabled"}')).toEqual({
      'ferry.dev/spot': 'enabled',
    });
  });
});
