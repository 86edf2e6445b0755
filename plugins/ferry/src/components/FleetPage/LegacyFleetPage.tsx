import { Content, Header, Page } from '@backstage/core-components';
import { FleetPage } from './FleetPage';

/** The fleet page inside the legacy app's page chrome; the new system adds its own. */
export function LegacyFleetPage() {
  return (
    <Page themeId="tool">
      <Header title="Ferry" subtitle="Stateful services on spot capacity" />
      <Content noPadding>
        <FleetPage />
      </Content>
    </Page>
  );
}
