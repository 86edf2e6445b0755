import { component } from '../../__testUtils__/fixtures';
import { readPolicyAnnotations } from './policyAnnotations';

describe('readPolicyAnnotations', () => {
  it('reads well-formed annotations', () => {
    expect(
      readPolicyAnnotations(
        component('a', 'team', {
          'ferry.dev/spot': 'enabled',
          'ferry.dev/permanent-ratio': '0.34',
          'ferry.dev/availability-target': '1',
          'ferry.dev/migration': 'checkpoint',
          'backstage.io/kubernetes-id': 'a',
        }),
      ),
    ).toEqual({
      raw: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.34',
        'ferry.dev/availability-target': '1',
        'ferry.dev/migration': 'checkpoint',
      },
      settings: {
        enabled: true,
        permanentRatio: 0.34,
        availabilityTarget: 1,
        migration: 'checkpoint',
      },
      errors: [],
    });
  });

  it.each([
    ['ferry.dev/spot', 'on', /use 'enabled' or 'disabled'/],
    ['ferry.dev/permanent-ratio', '1.2', /from 0 to 1/],
    ['ferry.dev/permanent-ratio', '-0.1', /from 0 to 1/],
    ['ferry.dev/permanent-ratio', '30%', /from 0 to 1/],
    ['ferry.dev/permanent-ratio', '', /from 0 to 1/],
    ['ferry.dev/availability-target', '0', /above 0 and at most 1/],
    ['ferry.dev/availability-target', '99.9', /above 0 and at most 1/],
    [
      'ferry.dev/migration',
      'criu',
      /use one of auto, valkey, checkpoint, volume, reschedule/,
    ],
  ])('says what is wrong with %s: %p', (key, value, message) => {
    const result = readPolicyAnnotations(
      component('a', 'team', { [key]: value }),
    );
    expect(result.settings).toEqual({});
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(message);
    expect(result.errors[0]).toContain(key);
  });

  it('keeps the well-formed annotations next to a malformed one', () => {
    const result = readPolicyAnnotations(
      component('a', 'team', {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': 'lots',
      }),
    );
    expect(result.settings).toEqual({ enabled: true });
    expect(result.errors).toHaveLength(1);
  });
});
